"""Assemble a service's Tornado application and run it until SIGTERM or SIGINT.

A service package provides two functions and hands them to `run_service`:

* `load_settings()` returns its frozen settings object, which has a `common`
  attribute of type `CommonSettings`, or raises `SettingsError`;
* `async build(settings, stores)` returns a `Service`: the application plus any
  background tasks to cancel at shutdown.

Shutdown: stop accepting connections, let in-flight requests finish for up to
`http.shutdown_grace` seconds, close the remaining connections and the store clients.

Workers: with `http.workers` (or `--workers N`) above 1, the main process binds the
listening sockets once and forks that many workers. Each worker creates its own
event loop, store clients and application after the fork, and all of them accept
from the shared sockets, so a worker that dies leaves queued connections to the
others. The main process only supervises (see `WorkerPool`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import errno
import functools
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from collections.abc import Iterable
from typing import Any, Awaitable, Callable, Coroutine

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web

from .health import HealthHandler, ReadinessHandler, store_checks
from .logsetup import configure_logging
from .settings import CommonSettings, SettingsError
from .stores import Stores, create_mongo, create_redis
from .web import InFlight, NotFoundHandler, log_request

# The HTTP server's own cap, a backstop for bodies far past the per-request limit
# that `BaseHandler` rejects with a JSON 413.
SERVER_BODY_FACTOR = 4


@dataclass
class Service:
    """A built service: its application and the background tasks it runs."""

    app: tornado.web.Application
    tasks: list[asyncio.Task] = field(default_factory=list)
    # Called at shutdown after the tasks are cancelled, before the stores close.
    on_close: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def open_stores(common: CommonSettings) -> Stores:
    """Create the store clients a service's settings name; nothing connects yet."""
    mongo = create_mongo(common.mongo, common.service) if common.mongo else None
    return Stores(
        redis=create_redis(common.redis),
        mongo=mongo,
        mongo_database=common.mongo.database if common.mongo else "",
    )


def make_application(common: CommonSettings, stores: Stores, handlers: list[Any],
                     **settings: Any) -> tornado.web.Application:
    """Return an Application with `/healthz`, `/readyz`, a JSON 404 and the access log."""
    routes = [
        (r"/healthz", HealthHandler),
        (r"/readyz", ReadinessHandler, {"checks": store_checks(stores), "last_state": {}}),
        *handlers,
    ]
    return tornado.web.Application(
        routes,
        service=common.service,
        stores=stores,
        inflight=InFlight(),
        max_body_bytes=common.http.max_body_bytes,
        default_handler_class=NotFoundHandler,
        log_function=log_request,
        compress_response=False,
        **settings,
    )


class SharedSocketServer(tornado.httpserver.HTTPServer):
    """An HTTP server for worker processes that accept from one shared socket.

    Tornado's accept handler takes up to 128 pending connections each time the
    socket is readable, so the first worker to wake takes a whole burst, and a
    client that opens its keep-alive pool at once loads one worker only. This
    server accepts one connection per readiness event and goes back to the event
    loop, so idle workers take turns and a busy worker, which returns to its loop
    later, takes fewer. Connections that one worker has not accepted stay in the
    shared queue for the others, also when that worker dies.
    """

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        # Replaces TCPServer.add_sockets, keeping its bookkeeping (`_sockets` and
        # `_handlers`, read by stop()) and its per-connection entry point.
        loop = tornado.ioloop.IOLoop.current()
        for sock in sockets:
            loop.add_handler(sock, functools.partial(self._accept_one, sock), tornado.ioloop.IOLoop.READ)
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = functools.partial(loop.remove_handler, sock)

    def _accept_one(self, sock: socket.socket, fd: Any, events: int) -> None:
        try:
            connection, address = sock.accept()
        except (BlockingIOError, ConnectionAbortedError):
            # Another worker took it, or the client gave up before it was accepted.
            return
        self._handle_connection(connection, address)


# Seconds a worker may take past `http.shutdown_grace` to stop before the main process kills it.
STOP_MARGIN = 5.0


def start_server(service: Service, common: CommonSettings,
                 sockets: list[socket.socket] | None = None) -> tornado.httpserver.HTTPServer:
    """Serve on `sockets` bound by the main process, else listen on the configured port.

    Raises OSError when the port is taken.
    """
    server_class = SharedSocketServer if sockets else tornado.httpserver.HTTPServer
    server = server_class(
        service.app,
        xheaders=common.http.trust_proxy_headers,
        max_body_size=common.http.max_body_bytes * SERVER_BODY_FACTOR,
        idle_connection_timeout=60,
    )
    if sockets:
        server.add_sockets(sockets)
    else:
        server.listen(common.http.port, address=common.http.host)
    return server


async def drain(server: tornado.httpserver.HTTPServer, service: Service, grace: float) -> None:
    """Stop accepting, wait up to `grace` seconds for in-flight requests, close the rest."""
    server.stop()
    inflight: InFlight = service.app.settings["inflight"]
    deadline = time.monotonic() + grace
    while inflight.count > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    try:
        await asyncio.wait_for(server.close_all_connections(), timeout=2.0)
    except asyncio.TimeoutError:
        pass
    for task in service.tasks:
        task.cancel()
    await asyncio.gather(*service.tasks, return_exceptions=True)
    for callback in service.on_close:
        await callback()


def _port_in_use(log: logging.Logger, common: CommonSettings) -> int:
    log.error("port %d on %s is already in use: stop the other process or set %s",
              common.http.port, common.http.host, f"{common.service.split('_')[0].upper()}_PORT")
    return 1


async def _serve(settings: Any, build: Callable[[Any, Stores], Awaitable[Service]],
                 sockets: list[socket.socket] | None = None) -> int:
    common: CommonSettings = settings.common
    log = logging.getLogger(f"{common.service}.app")
    stores = open_stores(common)
    try:
        try:
            service = await build(settings, stores)
        except SettingsError as exc:
            # Some settings can only be checked against the stores, at start.
            print(f"configuration error: {exc}", file=sys.stderr)
            return 2
        try:
            server = start_server(service, common, sockets)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return _port_in_use(log, common)
            raise
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        watch = asyncio.ensure_future(_stop_when_orphaned(stop, log)) if sockets else None
        log.info("%s listening on http://%s:%d (pid %d, %s event loop)", common.service, common.http.host,
                 common.http.port, os.getpid(), type(loop).__module__.partition(".")[0])
        await stop.wait()
        if watch is not None:
            watch.cancel()
        log.info("%s stopping: finishing %d in-flight request(s)", common.service,
                 service.app.settings["inflight"].count)
        await drain(server, service, common.http.shutdown_grace)
    finally:
        await stores.close()
    log.info("%s stopped", common.service)
    return 0


async def _stop_when_orphaned(stop: asyncio.Event, log: logging.Logger) -> None:
    """Set `stop` once this worker's main process is gone, for example killed with SIGKILL.

    Without it the worker would keep serving the port with no process left to
    stop or replace it.
    """
    main_pid = os.getppid()
    while os.getppid() == main_pid:
        await asyncio.sleep(1.0)
    log.warning("main process pid %d is gone; stopping worker pid %d", main_pid, os.getpid())
    stop.set()


class WorkerPool:
    """Fork `count` workers and keep them running until SIGTERM or SIGINT.

    `run_worker` runs in each forked child and never returns there. The main
    process handles signals and restarts:

    * SIGTERM or SIGINT is passed on to every worker as SIGTERM; each drains its
      in-flight requests and exits, and the main process exits once all have.
      A worker still running `stop_timeout` seconds later is killed with
      SIGKILL, and the main process then exits with status 1.
    * A worker killed by a signal (a crash, the OOM killer) or stopped on its own
      is replaced, after `RESTART_DELAY` seconds if it lived shorter than that.
    * A worker that exits with an error status stops the whole pool, and the main
      process exits with that status. The services exit so when they cannot
      start (a setting the stores reject, a store down at start), and a
      replacement would fail the same way.
    """

    RESTART_DELAY = 1.0
    # Seconds between two checks for exited workers.
    POLL_INTERVAL = 0.1

    def __init__(self, count: int, run_worker: Callable[[], None], log: logging.Logger,
                 stop_timeout: float = 30.0):
        self.count = count
        self._run_worker = run_worker
        self._log = log
        self._stop_timeout = stop_timeout
        self._started: dict[int, float] = {}  # pid -> monotonic start time
        self._stopping = False
        self._stop_deadline = 0.0
        self._killed = False

    def run(self) -> int:
        """Start the workers and supervise them; return the exit status of the main process."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        for _ in range(self.count):
            self._spawn()
        status = 0
        while self._started:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                # No worker has exited. Polling, rather than a blocking wait that a
                # signal handler cannot end, lets the stop deadline be checked.
                self._kill_if_overdue()
                time.sleep(self.POLL_INTERVAL)
                continue
            started = self._started.pop(pid, None)
            if started is None:
                continue
            code = os.waitstatus_to_exitcode(wait_status)
            if self._stopping:
                continue
            if code > 0:
                self._log.error("worker pid %d exited with status %d; stopping the other %d worker(s)",
                                pid, code, len(self._started))
                status = code
                self._stop()
                continue
            cause = f"was killed by signal {signal.Signals(-code).name}" if code < 0 else "stopped"
            self._log.warning("worker pid %d %s; starting a replacement", pid, cause)
            if time.monotonic() - started < self.RESTART_DELAY:
                time.sleep(self.RESTART_DELAY)
            if not self._stopping:
                self._spawn()
        return 1 if self._killed else status

    def _kill_if_overdue(self) -> None:
        if not self._stopping or self._killed or time.monotonic() < self._stop_deadline:
            return
        self._killed = True
        pids = sorted(self._started)
        self._log.error("worker(s) %s did not stop within %.0fs of SIGTERM; killing them",
                        ", ".join(f"pid {pid}" for pid in pids), self._stop_timeout)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _spawn(self) -> None:
        pid = os.fork()
        if pid == 0:
            # The child serves until it receives a stop signal. Its own event loop
            # takes over SIGTERM and SIGINT once it runs.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            self._run_worker()
            os._exit(1)  # run_worker exits by itself; this is a backstop
        self._started[pid] = time.monotonic()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if not self._stopping:
            self._log.info("stopping %d worker(s) on %s", len(self._started), signal.Signals(signum).name)
        self._stop()

    def _stop(self) -> None:
        if not self._stopping:
            self._stop_deadline = time.monotonic() + self._stop_timeout
        self._stopping = True
        for pid in list(self._started):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def parse_arguments(prog: str, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command-line options every service accepts."""
    parser = argparse.ArgumentParser(prog=prog, description="Run the service until SIGTERM or SIGINT.")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="processes serving the port; 0 or 1 serves from one process "
                             "(overrides http.workers, default: one per core)")
    options = parser.parse_args(argv)
    if options.workers is not None and options.workers < 0:
        parser.error(f"--workers must be 0 or more, not {options.workers}")
    return options


def with_workers(settings: Any, workers: int) -> Any:
    """Return a copy of a service's settings with `http.workers` replaced."""
    common: CommonSettings = settings.common
    http = dataclasses.replace(common.http, workers=max(1, workers))
    return dataclasses.replace(settings, common=dataclasses.replace(common, http=http))


def run_loop(main: Coroutine[Any, Any, int], event_loop: str) -> int:
    """Run `main` to completion on a new event loop of the kind `http.event_loop` names.

    uvloop runs the same asyncio code with its I/O on libuv, which costs less CPU
    per request than the standard library's loop (see docs/performance.md).
    """
    if event_loop == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    else:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main)


def run_service(load_settings: Callable[[], Any],
                build: Callable[[Any, Stores], Awaitable[Service]],
                argv: list[str] | None = None) -> None:
    """Load settings, configure logging and serve until a stop signal; never returns.

    `argv` defaults to the command line (`--workers N`).
    """
    options = parse_arguments(os.path.basename(sys.argv[0]), argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    if options.workers is not None:
        settings = with_workers(settings, options.workers)
    common: CommonSettings = settings.common
    configure_logging(common.log_level)
    if common.http.workers <= 1:
        sys.exit(run_loop(_serve(settings, build), common.http.event_loop))

    log = logging.getLogger(f"{common.service}.app")
    try:
        sockets = tornado.netutil.bind_sockets(common.http.port, address=common.http.host)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            sys.exit(_port_in_use(log, common))
        raise
    log.info("%s starting %d workers on http://%s:%d (main pid %d)", common.service,
             common.http.workers, common.http.host, common.http.port, os.getpid())
    # A worker gets the drain grace, then time to close its store clients.
    pool = WorkerPool(common.http.workers,
                      lambda: sys.exit(run_loop(_serve(settings, build, sockets), common.http.event_loop)), log,
                      stop_timeout=common.http.shutdown_grace + STOP_MARGIN)
    status = pool.run()
    for sock in sockets:
        sock.close()
    log.info("%s stopped all workers", common.service)
    sys.exit(status)
