"""Every Redis-using store against a real Redis Cluster, through `create_redis`.

A cluster rejects a script, a transaction or a multi-key command whose keys lie
in different hash slots (CROSSSLOT), so each store's atomic operations must keep
their keys under one hash tag or be split per key.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway_srv.admission import RedisChecks
from gateway_srv.ratelimit import RateLimiter
from gateway_srv.routes import RateLimit, RateLimitPolicy
from identity_srv.codes import CodeGrant, CodeStore, Redemption
from identity_srv.login_throttle import LoginThrottle, ThrottleLimits
from identity_srv.refresh_tokens import RefreshTokenStore, Rotation
from identity_srv.sessions import SessionStore
from servicekit import denylist
from servicekit.embedded import free_port
from servicekit.errors import HttpProblem
from servicekit.settings import RedisSettings
from servicekit.stores import (
    UNAVAILABLE_ERRORS,
    StoreUnavailable,
    create_redis,
    ping_redis,
    store_name,
)
from tests.gateway.counting import counting_stops_at_rejection

from .redis_cluster import LocalRedisCluster

pytestmark = pytest.mark.slow

PREFIX = "idp:"
GRANT = CodeGrant(
    grant_id="g1", client_id="movies_mvc_client", redirect_uri="http://localhost:5002/signin-oidc",
    code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", scope="openid movieAPI",
    sub="818727", sid="sid-1", auth_time=1_700_000_000, amr=("pwd",), nonce="n-1",
)


def run_on_cluster(url: str, action):
    async def main():
        client = create_redis(RedisSettings(url=url, key_prefix=PREFIX, connect_timeout=2.0,
                                            command_timeout=2.0))
        try:
            return await action(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_code_replay_revokes_grant(cluster_url):
    async def action(client):
        store = CodeStore(client, PREFIX)
        code = await store.issue(GRANT)
        first = await store.consume(code)
        kept = await store.remember_tokens("g1", [("jti-1", 2_000_000_000)], ["fam-1"])
        replay = await store.consume(code)
        issued = await store.revoke_grant("g1")
        late = await store.remember_tokens("g1", [("jti-2", 2_000_000_000)], [])
        return first, kept, replay, issued, late

    first, kept, replay, issued, late = run_on_cluster(cluster_url, action)
    assert first == (Redemption.FIRST_USE, GRANT)
    assert kept is True
    assert replay == (Redemption.REPLAY, GRANT)
    assert issued.access == (("jti-1", 2_000_000_000),)
    assert issued.families == ("fam-1",)
    assert late is False


def test_refresh_reuse_revokes_family(cluster_url):
    async def action(client):
        store = RefreshTokenStore(client, PREFIX, idle_lifetime=600, absolute_lifetime=3600, reuse_grace=0)
        token, _ = await store.create("movies_mvc_client", "818727", "openid offline_access", "sid-1",
                                      int(time.time()))
        rotated = await store.rotate(token, "movies_mvc_client")
        reused = await store.rotate(token, "movies_mvc_client")
        after = await store.rotate(rotated[1], "movies_mvc_client")
        return rotated[0], reused[0], after[0]

    assert run_on_cluster(cluster_url, action) == (Rotation.ROTATED, Rotation.REUSED, Rotation.REVOKED)


def test_session_end_deletes_every_key(cluster_url):
    async def action(client):
        store = SessionStore(client, PREFIX, lifetime=600, remember_lifetime=600)
        session_id, session = await store.create("818727", ("pwd",), remember=False)
        await store.add_client(session.sid, "movies_mvc_client")
        await store.add_family(session.sid, "fam-1")
        loaded = await store.get(session_id)
        ended = await store.end(session_id)
        left = [key async for key in client.scan_iter(match=f"{PREFIX}*")]
        again = await store.end_by_sid(session.sid)
        return loaded, ended, left, again

    loaded, ended, left, again = run_on_cluster(cluster_url, action)
    assert loaded.clients == frozenset({"movies_mvc_client"})
    assert ended.families == frozenset({"fam-1"})
    assert left == []
    assert again is None


def test_login_throttle_counts_both_keys(cluster_url):
    limits = ThrottleLimits(delay_after=1, lock_after=3, lock_seconds=900, max_delay=30, window=900)

    async def action(client):
        throttle = LoginThrottle(client, PREFIX, limits, limits)
        waits = [await throttle.record_failure("alice", "192.0.2.1") for _ in range(3)]
        blocked = await throttle.retry_after("alice", "192.0.2.1")
        await throttle.record_success("alice")
        other_address = await throttle.retry_after("alice", "192.0.2.2")
        return waits, blocked, other_address

    waits, blocked, other_address = run_on_cluster(cluster_url, action)
    assert waits[0] == 0
    assert waits[2] >= 899
    assert blocked >= 899
    assert other_address == 0


def test_deny_list_and_rate_limits_in_one_pipeline(cluster_url):
    """The gateway's pipeline spans three keys in different slots; each reply comes back in order."""
    policy = RateLimitPolicy(per_client=RateLimit(requests=5, window=60),
                             per_address=RateLimit(requests=2, window=60))
    limiter = RateLimiter("gw:")
    counters = limiter.counters("movies", policy, "movieClient", "192.0.2.1")

    async def action(client):
        checks = RedisChecks(client)
        await denylist.revoke(client, "jti-revoked", time.time() + 300)
        first = await checks.check_and_count("jti-revoked", counters)
        second = await checks.check_and_count("jti-live", counters)
        third = await checks.check_and_count(None, counters)
        return first, second, third

    first, second, third = run_on_cluster(cluster_url, action)
    assert first[0] is True
    assert second[0] is False
    assert third[0] is False
    quotas = RateLimiter.judge("movies", counters, second[1])
    assert [(q.name, q.count) for q in quotas] == [("client", 2), ("address", 2)]
    assert all(0 < q.reset <= 60 for q in quotas)
    with pytest.raises(HttpProblem) as refused:
        RateLimiter.judge("movies", counters, third[1])
    assert refused.value.status == 429


def test_refused_request_spares_later_limits_on_cluster(cluster_url):
    """On a cluster the pipeline counts every limit, then gives back what follows the refusing one."""
    replies, client_count = counting_stops_at_rejection(RedisChecks, lambda action: run_on_cluster(cluster_url, action),
                                                      "gw-cluster-stop:")
    assert [[count for count, _ in reply] for reply in replies] == [[1, 1, 1], [2, 1, 1], [3, 1, 1]]
    assert client_count == 1


def test_denylist_on_cluster(cluster_url):
    async def action(client):
        await denylist.revoke(client, "jti-1", time.time() + 300)
        return await denylist.is_revoked(client, "jti-1"), await denylist.is_revoked(client, "jti-2")

    assert run_on_cluster(cluster_url, action) == (True, False)


def test_unreachable_cluster_is_store_down():
    """A cluster URL whose nodes all refuse connections is "redis unavailable", a 503."""
    url = f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}"

    async def action(client):
        with pytest.raises(UNAVAILABLE_ERRORS) as caught:
            await client.get("anything")
        with pytest.raises(StoreUnavailable) as ping:
            await ping_redis(client, 1.0)
        return caught.value, ping.value

    error, ping = run_on_cluster(url, action)
    assert store_name(error) == "redis"
    assert ping.store == "redis"


def test_primary_failover_keeps_state(tmp_path):
    """Kill the primary that stores a refresh token family; its replica takes over with the family."""
    cluster = LocalRedisCluster(tmp_path).start()
    try:
        async def action(client):
            store = RefreshTokenStore(client, PREFIX, idle_lifetime=600, absolute_lifetime=3600)
            token, family = await store.create("movies_mvc_client", "818727", "openid", "sid-1", int(time.time()))
            await client.execute_command("WAIT", 1, 1000, target_nodes=client.get_node_from_key(
                f"{PREFIX}rtf:{{{family.family_id}}}"))
            primary = client.get_node_from_key(f"{PREFIX}rtf:{{{family.family_id}}}")
            cluster.kill_node(primary.port)

            outcomes = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    outcomes.append(await store.rotate(token, "movies_mvc_client"))
                    break
                except UNAVAILABLE_ERRORS as exc:
                    outcomes.append(type(exc).__name__)
                    await asyncio.sleep(0.5)
            return outcomes

        outcomes = run_on_cluster(cluster.url, action)
    finally:
        cluster.stop()
    # The client reported "store down" (a 503) until the replica was promoted,
    # then found the new primary by itself.
    assert outcomes[-1][0] is Rotation.ROTATED, outcomes
    assert len(outcomes) >= 2
    assert all(isinstance(outcome, str) for outcome in outcomes[:-1])
