"""Rate limits counted in Redis: per address, per client, and shared by two gateway processes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time

import pytest
import redis
import redis.asyncio
from tornado.httpclient import AsyncHTTPClient

from gateway_srv.admission import RedisChecks
from gateway_srv.ratelimit import RateLimiter
from gateway_srv.routes import RateLimit, RateLimitPolicy
from servicekit import denylist
from servicekit.embedded import free_port, redis_server
from servicekit.errors import HttpProblem
from tests.support.processes import ServiceProcess
from tests.support.test_issuer import TestIssuer

from .conftest import gateway_env, open_route, write_routes
from .counting import counting_stops_at_rejection

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

USER_LIMIT = """
[routes.authentication]
scopes = ["movieAPI"]

[routes.rate_limit]
window = 60
per_client = 4
per_user = 2
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


def reads_processed(client: redis.Redis) -> int:
    """Return how many reads from client connections Redis has handled; the INFO call is one."""
    return int(client.info("stats")["total_reads_processed"])


@pytest.mark.gen_test(timeout=30)
async def test_deny_list_and_counters_share_one_round_trip(start_gateway, echo, tmp_path):
    """A token route with two rate limits costs Redis one read per request, not three."""
    private = redis_server(free_port(), tmp_path / "redis", persistent=False)
    private.start()
    issuer = TestIssuer().start()
    try:
        gateway = await start_gateway(open_route([echo.url], extra=CLIENT_LIMIT), REDIS_URL=private.url,
                                      ISSUER=issuer.url)
        token = issuer.sign()
        # The first request opens the gateway's Redis connection and fetches the keys.
        assert (await fetch(gateway.url + "/things/1", token)).code == 200
        observer = redis.Redis.from_url(private.url)
        before = reads_processed(observer)
        for _ in range(4):
            assert (await fetch(gateway.url + "/things/1", token)).code == 200
        # Four requests and the second INFO.
        assert reads_processed(observer) - before == 4 + 1
        assert sorted(observer.keys("gw:rl:*")) == [
            b"gw:rl:things:addr:127.0.0.1",
            f"gw:rl:things:client:{hashlib.sha256(b'movieClient').hexdigest()}".encode()]
        observer.close()
    finally:
        issuer.stop()
        private.stop()


@pytest.mark.gen_test(timeout=30)
async def test_revoked_token_is_401_even_with_budget_left(start_gateway, echo, redis_url):
    issuer = TestIssuer().start()
    try:
        gateway = await start_gateway(open_route([echo.url], extra=CLIENT_LIMIT), ISSUER=issuer.url)
        claims = issuer.claims()
        token = issuer.sign(claims)
        assert (await fetch(gateway.url + "/things/1", token)).code == 200
        redis.Redis.from_url(redis_url).set(denylist.key(claims["jti"]), b"1", ex=60)
        refused = await fetch(gateway.url + "/things/1", token)
        assert refused.code == 401
        assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
        assert json.loads(refused.body)["error_description"] == "the token has been revoked"
        assert len(echo.seen) == 1
    finally:
        issuer.stop()


@pytest.mark.gen_test(timeout=30)
async def test_user_limit_gives_each_user_a_budget(start_gateway, echo, redis_url):
    issuer = TestIssuer().start()
    try:
        gateway = await start_gateway(open_route([echo.url], extra=USER_LIMIT), ISSUER=issuer.url)
        alice = issuer.sign(issuer.user_claims("alice-sub"))
        bob = issuer.sign(issuer.user_claims("bob-sub"))
        machine = issuer.sign()

        alice_statuses = [(await fetch(gateway.url + "/things/1", alice)).code for _ in range(5)]
        bob_first = await fetch(gateway.url + "/things/1", bob)
        bob_second = await fetch(gateway.url + "/things/1", bob)
        machine_statuses = [(await fetch(gateway.url + "/things/1", machine)).code for _ in range(3)]

        assert alice_statuses == [200, 200, 429, 429, 429]
        # Alice's refused requests did not use the budget of the client, which Bob shares.
        assert bob_first.code == 200
        assert bob_second.code == 200
        assert bob_first.headers["RateLimit-Policy"] == '"user";q=2;w=60, "client";q=4;w=60'
        assert re.fullmatch(r'"user";r=1;t=(59|60)', bob_first.headers["RateLimit"])
        assert re.fullmatch(r'"(user|client)";r=0;t=(59|60)', bob_second.headers["RateLimit"])
        # A client_credentials token's sub is its client id: it has no user budget.
        assert machine_statuses == [200, 200, 200]
        user_keys = redis.Redis.from_url(redis_url).keys("gw:rl:things:user:*")
        assert sorted(user_keys) == sorted(
            f"gw:rl:things:user:{hashlib.sha256(sub.encode()).hexdigest()}".encode()
            for sub in ("alice-sub", "bob-sub"))
    finally:
        issuer.stop()


def test_refused_request_spares_later_limits(redis_url):
    def run(action):
        async def with_client():
            client = redis.asyncio.Redis.from_url(redis_url)
            try:
                return await action(client)
            finally:
                await client.aclose()
        return asyncio.run(with_client())

    replies, client_count = counting_stops_at_rejection(RedisChecks, run, "gw-stop:")
    assert [[count for count, _ in reply] for reply in replies] == [[1, 1, 1], [2, 1, 1], [3, 1, 1]]
    assert client_count == 1


def test_one_script_checks_deny_list_and_counts(redis_url):
    """On one Redis server a single script returns the deny-list verdict and each counter's count and TTL."""
    policy = RateLimitPolicy(per_client=RateLimit(requests=5, window=60),
                             per_address=RateLimit(requests=2, window=30))
    counters = RateLimiter("gw-script:").counters("movies", policy, "movieClient", "192.0.2.7")

    async def action():
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            checks = RedisChecks(client)
            await denylist.revoke(client, "jti-script-revoked", time.time() + 300)
            first = await checks.check_and_count("jti-script-revoked", counters)
            second = await checks.check_and_count("jti-script-live", counters)
            third = await checks.check_and_count(None, counters)
            return first, second, third
        finally:
            await client.aclose()

    first, second, third = asyncio.run(action())
    assert first[0] is True
    assert second[0] is False
    assert third[0] is False
    quotas = RateLimiter.judge("movies", counters, second[1])
    assert [(q.name, q.count) for q in quotas] == [("client", 2), ("address", 2)]
    assert 30 < quotas[0].reset <= 60
    assert 0 < quotas[1].reset <= 30
    with pytest.raises(HttpProblem) as refused:
        RateLimiter.judge("movies", counters, third[1])
    assert refused.value.status == 429
