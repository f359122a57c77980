"""Assemble a service's Tornado application and run it until SIGTERM or SIGINT.

A service package provides two functions and hands them to `run_service`:

* `load_settings()` returns its frozen settings object, which has a `common`
  attribute of type `CommonSettings`, or raises `SettingsError`;
* `async build(settings, stores)` returns a `Service`: the application plus any
  background tasks to cancel at shutdown.

Shutdown: stop accepting connections, let in-flight requests finish for up to
`http.shutdown_grace` seconds, close the remaining connections and the store clients.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import tornado.httpserver
import tornado.web

from .health import HealthHandler, ReadinessHandler, store_checks
from .logsetup import configure_logging
from .settings import CommonSettings, SettingsError
from .stores import Stores, create_mongo, create_redis
from .web import InFlight, NotFoundHandler, log_request

# The HTTP server's own cap, a backstop for bodies far past the per-request limit
# that `BaseHandler` answers with a JSON 413.
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


def start_server(service: Service, common: CommonSettings) -> tornado.httpserver.HTTPServer:
    """Listen on the configured host and port; raise OSError if the port is taken."""
    server = tornado.httpserver.HTTPServer(
        service.app,
        xheaders=common.http.trust_proxy_headers,
        max_body_size=common.http.max_body_bytes * SERVER_BODY_FACTOR,
        idle_connection_timeout=60,
    )
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


async def _serve(settings: Any, build: Callable[[Any, Stores], Awaitable[Service]]) -> int:
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
            server = start_server(service, common)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                log.error("port %d on %s is already in use: stop the other process or set %s",
                          common.http.port, common.http.host, f"{common.service.split('_')[0].upper()}_PORT")
                return 1
            raise
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        log.info("%s listening on http://%s:%d", common.service, common.http.host, common.http.port)
        await stop.wait()
        log.info("%s stopping: finishing %d in-flight request(s)", common.service,
                 service.app.settings["inflight"].count)
        await drain(server, service, common.http.shutdown_grace)
    finally:
        await stores.close()
    log.info("%s stopped", common.service)
    return 0


def run_service(load_settings: Callable[[], Any],
                build: Callable[[Any, Stores], Awaitable[Service]]) -> None:
    """Load settings, configure logging and serve until a stop signal; never returns."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    configure_logging(settings.common.log_level)
    sys.exit(asyncio.run(_serve(settings, build)))
