"""Each service as a real process: start, readiness, store outages, clean stop."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from servicekit.embedded import free_port, redis_server
from tests.support.processes import ROOT, ServiceProcess, get_status, wait_for

PACKAGES = ["identity_srv", "movies_srv", "webclient_srv", "gateway_srv"]


@pytest.mark.parametrize("package", PACKAGES)
def test_service_starts_ready_and_stops(package, store_env, tmp_path):
    service = ServiceProcess(package, store_env, tmp_path / "service.log").start()
    status, body = get_status(f"{service.url}/readyz")
    assert status == 200
    assert json.loads(body)["status"] == "ready"
    assert service.stop() == 0
    log = service.log()
    assert f"{package} listening on http://127.0.0.1:{service.port}" in log
    assert "uvloop event loop)" in log
    assert f"{package} stopped" in log
    assert "Traceback" not in log


def test_asyncio_event_loop_setting(store_env, tmp_path):
    env = {**store_env, "MOVIES__HTTP__EVENT_LOOP": "asyncio"}
    service = ServiceProcess("movies_srv", env, tmp_path / "service.log").start()
    assert get_status(f"{service.url}/readyz")[0] == 200
    assert service.stop() == 0
    assert "asyncio event loop)" in service.log()


def test_readyz_follows_redis_down_and_back(mongo_url, tmp_path):
    port = free_port()
    own_redis = redis_server(port, tmp_path / "redis", persistent=False)
    own_redis.start()
    env = {"REDIS_URL": own_redis.url, "MONGO_URL": mongo_url}
    service = ServiceProcess("movies_srv", env, tmp_path / "service.log").start()
    try:
        assert get_status(f"{service.url}/readyz")[0] == 200

        own_redis.stop()
        status, body = get_status(f"{service.url}/readyz")
        assert status == 503
        assert json.loads(body) == {
            "status": "unavailable",
            "checks": {"redis": "unavailable", "mongodb": "ok"},
            "error": "temporarily_unavailable",
            "error_description": "redis is unavailable",
        }
        assert get_status(f"{service.url}/healthz")[0] == 200

        own_redis.start()
        wait_for(lambda: get_status(f"{service.url}/readyz")[0] == 200, 10, message="readyz 200 again")
    finally:
        assert service.stop() == 0
        own_redis.stop()
    log = service.log()
    assert "readiness: redis is unavailable" in log
    assert "readiness: redis is available again" in log


def test_invalid_setting_stops_with_one_line(store_env):
    env = {**store_env, "MOVIES_PORT": "not-a-port", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "movies_srv"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr == (
        "configuration error: setting 'http.port' is 'not-a-port': set it to a whole number "
        "in conf/movies.toml or the environment\n")


def test_busy_port_is_reported(store_env, tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        service = ServiceProcess("gateway_srv", store_env, tmp_path / "service.log", port=port)
        service.start(wait=False)
        code = service.process.wait(30)
        service.stop()
    assert code == 1
    assert f"port {port} on 127.0.0.1 is already in use: stop the other process or set GATEWAY_PORT" \
        in service.log()
