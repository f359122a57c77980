"""Rate limits counted in Redis: per address, per client, and shared by two gateway processes."""

from __future__ import annotations

import json
import re

import pytest
import redis
from tornado.httpclient import AsyncHTTPClient

from servicekit.embedded import free_port
from tests.support.processes import ServiceProcess
from tests.support.test_issuer import TestIssuer

from .conftest import gateway_env, open_route, write_routes

ADDRESS_LIMIT = """
[routes.rate_limit]
window = 60
per_address = 3
"""

CLIENT_LIMIT = """
[routes.authentication]
scopes = ["movieAPI"]

[routes.rate_limit]
window = 60
per_client = 5
per_address = 100
"""


async def fetch(url: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await AsyncHTTPClient().fetch(url, raise_error=False, headers=headers)


@pytest.mark.gen_test
async def test_address_limit_returns_429(start_gateway, echo, redis_url):
    gateway = await start_gateway(open_route([echo.url], extra=ADDRESS_LIMIT))
    for remaining in (2, 1, 0):
        allowed = await fetch(gateway.url + "/things/1")
        assert allowed.code == 200
        assert allowed.headers["RateLimit-Policy"] == '"address";q=3;w=60'
        assert re.fullmatch(rf'"address";r={remaining};t=(59|60)', allowed.headers["RateLimit"])
    limited = await fetch(gateway.url + "/things/1")
    assert limited.code == 429
    assert limited.headers["Retry-After"] in ("59", "60")
    assert limited.headers["RateLimit-Policy"] == '"address";q=3;w=60'
    assert re.fullmatch(r'"address";r=0;t=(59|60)', limited.headers["RateLimit"])
    body = json.loads(limited.body)
    assert body["error"] == "too_many_requests"
    assert body["route"] == "things"
    assert len(echo.seen) == 3
    keys = redis.Redis.from_url(redis_url).keys("gw:rl:*")
    assert keys == [b"gw:rl:things:addr:127.0.0.1"]


@pytest.mark.gen_test(timeout=60)
async def test_two_gateways_share_client_budget(echo, redis_url, tmp_path):
    issuer = TestIssuer().start()
    routes_file = write_routes(tmp_path, open_route([echo.url], extra=CLIENT_LIMIT))
    env = gateway_env(redis_url, routes_file, ISSUER=issuer.url)
    first = ServiceProcess("gateway_srv", env, tmp_path / "gateway-1.log").start()
    second = ServiceProcess("gateway_srv", env, tmp_path / "gateway-2.log").start()
    try:
        token = issuer.sign()
        statuses = []
        for gateway in (first, second, first, second, first, second):
            statuses.append((await fetch(gateway.url + "/things/1", token)).code)
        assert statuses == [200, 200, 200, 200, 200, 429]
        assert (await fetch(first.url + "/things/1", token)).code == 429

        # Another client has its own budget on both gateways.
        other = issuer.sign(issuer.claims(client_id="reportingClient"))
        assert (await fetch(first.url + "/things/1", other)).code == 200
        assert (await fetch(second.url + "/things/1", other)).code == 200
        assert len(echo.seen) == 7
    finally:
        first.stop()
        second.stop()
        issuer.stop()


@pytest.mark.gen_test(timeout=20)
async def test_redis_down_is_503_not_unlimited(start_gateway, echo):
    """With Redis unreachable, a limited route rejects requests instead of skipping the count."""
    closed = f"redis://127.0.0.1:{free_port()}/0"
    gateway = await start_gateway(open_route([echo.url], extra=ADDRESS_LIMIT), REDIS_URL=closed,
                                  GATEWAY__REDIS__CONNECT_TIMEOUT="0.2")
    response = await fetch(gateway.url + "/things/1")
    assert response.code == 503
    assert response.headers["Retry-After"] == "5"
    assert json.loads(response.body) == {"error": "temporarily_unavailable",
                                         "error_description": "redis is unavailable; retry shortly"}
    assert echo.seen == []
