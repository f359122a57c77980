"""A downstream killed mid-request, and a gateway stopped with SIGTERM while requests are in flight.

The downstream is a separate `python -c` process serving `GET /api/slow/{seconds}`
after that many seconds, so a test can kill it (SIGKILL) with a request in flight.
"""

from __future__ import annotations

import concurrent.futures
import signal
import subprocess
import sys
import time

import pytest
import requests

from servicekit.embedded import free_port
from tests.support.processes import ServiceProcess, get_status, wait_for

SLOW_SERVER = """
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/api/slow/"):
            time.sleep(float(self.path.rsplit("/", 1)[1]))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

ROUTES = """
[downstreams.slow]
hosts = ["http://127.0.0.1:{port}"]
health_path = "/healthz"

[[routes]]
name = "slow"
upstream_path = "/slow/{{seconds}}"
downstream_path = "/api/slow/{{seconds}}"
downstream = "slow"
timeout = 10.0
retries = 0
"""


class SlowDownstream:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> SlowDownstream:
        self.process = subprocess.Popen([sys.executable, "-c", SLOW_SERVER, str(self.port)])
        wait_for(lambda: self._answers(), 10, message="slow downstream")
        return self

    def _answers(self) -> bool:
        try:
            return get_status(f"http://127.0.0.1:{self.port}/healthz", timeout=1)[0] == 200
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def downstream():
    server = SlowDownstream().start()
    yield server
    server.kill()


@pytest.fixture
def gateway(downstream, redis_url, tmp_path):
    routes = tmp_path / "routes.toml"
    routes.write_text(ROUTES.format(port=downstream.port))
    service = ServiceProcess("gateway_srv", {"REDIS_URL": redis_url, "GATEWAY__ROUTES__FILE": str(routes),
                                             "LOG_LEVEL": "info", "GATEWAY__HTTP__SHUTDOWN_GRACE": "10"},
                             tmp_path / "gateway.log").start()
    yield service
    service.stop()


def test_downstream_killed_mid_request_is_502(gateway, downstream):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        pending = pool.submit(requests.get, f"{gateway.url}/slow/3", timeout=15)
        time.sleep(0.5)
        downstream.kill()
        response = pending.result()
    assert response.status_code == 502
    assert response.json()["error"] == "bad_gateway"
    # No hang: the 502 comes as soon as the connection breaks, well before the route timeout.
    assert time.monotonic() - started < 3


def test_sigterm_finishes_in_flight_requests(gateway):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        pending = [pool.submit(requests.get, f"{gateway.url}/slow/2", timeout=15) for _ in range(8)]
        time.sleep(0.5)
        gateway.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # New connections are refused while the in-flight requests drain.
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{gateway.url}/slow/0", timeout=5)
        responses = [future.result() for future in pending]
    assert [response.status_code for response in responses] == [200] * 8
    assert gateway.process.wait(15) == 0
