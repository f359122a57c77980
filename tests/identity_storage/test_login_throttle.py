"""Failed sign-in counting: delays, locks, per-address limits and reset on success."""

from __future__ import annotations

from identity_srv.login_throttle import LoginThrottle, ThrottleLimits
from tests.identity_storage.conftest import PREFIX

USER_LIMITS = ThrottleLimits(delay_after=3, lock_after=6, lock_seconds=900, max_delay=30, window=900)
ADDRESS_LIMITS = ThrottleLimits(delay_after=20, lock_after=50, lock_seconds=900, max_delay=30, window=900)


def throttle_for(client):
    return LoginThrottle(client, PREFIX, USER_LIMITS, ADDRESS_LIMITS)


def test_waits_grow_then_lock(run_with_redis):
    async def action(client):
        throttle = throttle_for(client)
        return [await throttle.record_failure("alice", "127.0.0.1") for _ in range(6)]

    # Failures 1-3 are free, 4 and 5 wait 1 and 2 seconds, 6 locks for 900.
    assert run_with_redis(action) == [0, 0, 0, 1, 2, 900]


def test_lock_applies_to_any_case_of_username(run_with_redis):
    async def action(client):
        throttle = throttle_for(client)
        for _ in range(6):
            await throttle.record_failure("alice", "10.0.0.1")
        return await throttle.retry_after("ALICE", "10.0.0.2"), await throttle.retry_after("bob", "10.0.0.2")

    locked, other = run_with_redis(action)
    assert 890 < locked <= 900
    assert other == 0


def test_unknown_username_counted_alike(run_with_redis):
    async def action(client):
        throttle = throttle_for(client)
        return [await throttle.record_failure("no-such-user", "127.0.0.1") for _ in range(6)]

    assert run_with_redis(action) == [0, 0, 0, 1, 2, 900]


def test_address_limit_across_usernames(run_with_redis):
    async def action(client):
        throttle = throttle_for(client)
        for number in range(50):
            await throttle.record_failure(f"user{number}", "203.0.113.9")
        return await throttle.retry_after("fresh-user", "203.0.113.9"), await throttle.retry_after(
            "fresh-user", "203.0.113.10")

    blocked, elsewhere = run_with_redis(action)
    assert blocked > 0
    assert elsewhere == 0


def test_success_resets_username(run_with_redis):
    async def action(client):
        throttle = throttle_for(client)
        for _ in range(3):
            await throttle.record_failure("alice", "127.0.0.1")
        await throttle.record_success("alice")
        return await throttle.record_failure("alice", "127.0.0.1")

    assert run_with_redis(action) == 0


def test_counters_expire(run_with_redis):
    async def action(client):
        await throttle_for(client).record_failure("alice", "127.0.0.1")
        return [await client.ttl(key) for key in await client.keys("*")]

    ttls = run_with_redis(action)
    assert len(ttls) == 2
    assert all(0 < ttl <= 900 for ttl in ttls)
