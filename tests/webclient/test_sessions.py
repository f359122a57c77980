"""SessionStore, PendingSignInStore and the refresh lock against the real Redis."""

from __future__ import annotations

import asyncio
import hashlib
import time

import redis.asyncio

from webclient_srv.oidc.pkce import new_verifier, s256_challenge
from webclient_srv.sessions import (
    MAX_PENDING_SIGN_INS,
    PendingSignIn,
    PendingSignInStore,
    Session,
    SessionStore,
)

PREFIX = "web:"


def run_with_redis(redis_url: str, body):
    async def main():
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            return await body(client)
        finally:
            await client.aclose()
    return asyncio.run(main())


def session(**overrides) -> Session:
    values = dict(sub="88421113", id_token="id.token.value", id_claims={"sub": "88421113", "role": ["admin"]},
                  access_token="access.token.value", access_token_expires_at=time.time() + 300,
                  refresh_token="refresh-1")
    values.update(overrides)
    return Session(**values)


def pending(state: str, return_url: str = "/movies", created_at: float | None = None) -> PendingSignIn:
    return PendingSignIn(state=state, nonce="nonce", code_verifier=new_verifier(), return_url=return_url,
                         created_at=time.time() if created_at is None else created_at)


def test_pkce_challenge_of_the_rfc_example():
    # RFC 7636 Appendix B.
    assert s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert len(new_verifier()) == 43


def test_session_is_stored_under_a_hash_with_its_ttl(redis_url):
    async def body(client):
        store = SessionStore(client, PREFIX, lifetime=600)
        cookie = await store.create(session())
        keys = [key.decode() for key in await client.keys(f"{PREFIX}session:*")]
        ttl = await client.ttl(keys[0])
        return cookie, keys, ttl, await store.get(cookie)

    cookie, keys, ttl, loaded = run_with_redis(redis_url, body)
    assert keys == [f"{PREFIX}session:{hashlib.sha256(cookie.encode()).hexdigest()}"]
    assert cookie not in keys[0]
    assert 590 <= ttl <= 600
    assert loaded == session(access_token_expires_at=loaded.access_token_expires_at, created_at=loaded.created_at)
    assert loaded.roles == ("admin",)


def test_unknown_and_deleted_sessions_are_none(redis_url):
    async def body(client):
        store = SessionStore(client, PREFIX, lifetime=600)
        cookie = await store.create(session())
        await store.delete(cookie)
        return await store.get(cookie), await store.get("made-up")

    assert run_with_redis(redis_url, body) == (None, None)


def test_session_past_its_lifetime_is_not_saved(redis_url):
    async def body(client):
        store = SessionStore(client, PREFIX, lifetime=600)
        cookie = await store.create(session())
        saved = await store.save(cookie, session(created_at=time.time() - 601))
        return saved, await store.get(cookie)

    assert run_with_redis(redis_url, body) == (False, None)


def test_pending_sign_in_is_taken_once(redis_url):
    async def body(client):
        store = PendingSignInStore(client, PREFIX, lifetime=600)
        await store.add("browser", pending("state-1"))
        await store.add("browser", pending("state-2", "/claims"))
        first = await store.take("browser", "state-2")
        again = await store.take("browser", "state-2")
        other_browser = await store.take("other", "state-1")
        still_there = await store.take("browser", "state-1")
        return first, again, other_browser, still_there

    first, again, other_browser, still_there = run_with_redis(redis_url, body)
    assert first.return_url == "/claims"
    assert again is None
    assert other_browser is None
    assert still_there.return_url == "/movies"


def test_parallel_takes_of_one_sign_in_succeed_once(redis_url):
    async def body(client):
        store = PendingSignInStore(client, PREFIX, lifetime=600)
        await store.add("browser", pending("state"))
        return await asyncio.gather(*(store.take("browser", "state") for _ in range(10)))

    results = run_with_redis(redis_url, body)
    assert sum(result is not None for result in results) == 1


def test_pending_sign_in_expires(redis_url):
    async def body(client):
        store = PendingSignInStore(client, PREFIX, lifetime=600)
        await store.add("browser", pending("old", created_at=time.time() - 601))
        ttl = await client.ttl(f"{PREFIX}signin:{hashlib.sha256(b'browser').hexdigest()}")
        return await store.take("browser", "old"), ttl

    taken, ttl = run_with_redis(redis_url, body)
    assert taken is None
    assert 590 <= ttl <= 600


def test_too_many_pending_sign_ins_start_over(redis_url):
    async def body(client):
        store = PendingSignInStore(client, PREFIX, lifetime=600)
        for number in range(MAX_PENDING_SIGN_INS + 1):
            await store.add("browser", pending(f"state-{number}"))
        return await store.take("browser", "state-0"), await store.take("browser", f"state-{MAX_PENDING_SIGN_INS}")

    oldest, newest = run_with_redis(redis_url, body)
    assert oldest is None
    assert newest is not None


def test_refresh_lock_lets_one_holder_in_at_a_time(redis_url):
    async def body(client):
        store = SessionStore(client, PREFIX, lifetime=600)
        inside = 0
        most_inside = 0

        async def hold() -> bool:
            nonlocal inside, most_inside
            async with store.refresh_lock("cookie", timeout=5) as locked:
                inside += 1
                most_inside = max(most_inside, inside)
                await asyncio.sleep(0.05)
                inside -= 1
                return locked

        results = await asyncio.gather(*(hold() for _ in range(5)))
        return results, most_inside, await client.exists(f"{PREFIX}lock:{hashlib.sha256(b'cookie').hexdigest()}")

    results, most_inside, left_over = run_with_redis(redis_url, body)
    assert results == [True] * 5
    assert most_inside == 1
    assert left_over == 0


def test_refresh_lock_times_out_while_held(redis_url):
    async def body(client):
        store = SessionStore(client, PREFIX, lifetime=600)
        async with store.refresh_lock("cookie", timeout=5) as first:
            async with store.refresh_lock("cookie", timeout=0.5) as second:
                return first, second

    assert run_with_redis(redis_url, body) == (True, False)


def test_session_value_is_encrypted_for_its_cookie(redis_url):
    async def body(client):
        store = SessionStore(client, PREFIX, lifetime=600)
        cookie = await store.create(session(access_token="secret-access-token", refresh_token="secret-refresh"))
        key = (await client.keys(f"{PREFIX}session:*"))[0]
        stored = await client.get(key)
        # The same Redis value presented under another cookie's key must not open.
        other = "another-cookie-value"
        await client.set(f"{PREFIX}session:{hashlib.sha256(other.encode()).hexdigest()}", stored)
        tampered = bytes([stored[0] ^ 1]) + stored[1:]
        await client.set(key, tampered)
        return stored, await store.get(other), await store.get(cookie)

    stored, under_other_cookie, after_tampering = run_with_redis(redis_url, body)
    assert b"secret-access-token" not in stored
    assert b"secret-refresh" not in stored
    assert b"88421113" not in stored
    assert under_other_cookie is None
    assert after_tampering is None


def test_save_does_not_bring_back_ended_session(redis_url):
    async def body(client):
        store = SessionStore(client, PREFIX, lifetime=600)
        cookie = await store.create(session())
        loaded = await store.get(cookie)
        ended = await store.end_for_logout(sid=None, sub="88421113")
        saved = await store.save(cookie, loaded)
        return ended, saved, await store.get(cookie)

    assert run_with_redis(redis_url, body) == (1, False, None)


def test_logout_indexes_hold_no_cookie_or_user_id(redis_url):
    async def body(client):
        store = SessionStore(client, PREFIX, lifetime=600)
        cookie = await store.create(session(id_claims={"sub": "88421113", "sid": "provider-session-1"}))
        keys = sorted(key.decode() for key in await client.keys(f"{PREFIX}by-*"))
        members = [await client.smembers(key) for key in keys]
        ttls = [await client.ttl(key) for key in keys]
        return cookie, keys, members, ttls

    cookie, keys, members, ttls = run_with_redis(redis_url, body)
    assert keys == [f"{PREFIX}by-sid:{hashlib.sha256(b'provider-session-1').hexdigest()}",
                    f"{PREFIX}by-sub:{hashlib.sha256(b'88421113').hexdigest()}"]
    session_hash = hashlib.sha256(cookie.encode()).hexdigest()
    assert members == [{f"{session_hash}:{hashlib.sha256(b'88421113').hexdigest()}".encode()},
                       {session_hash.encode()}]
    assert all(590 <= ttl <= 600 for ttl in ttls)


def test_pending_sign_in_is_encrypted(redis_url):
    async def body(client):
        store = PendingSignInStore(client, PREFIX, lifetime=600)
        entry = pending("state-abc")
        await store.add("pre-session-cookie", entry)
        values = await client.hvals((await client.keys("*"))[0])
        return entry, values, await store.take("wrong-cookie", "state-abc"), await store.take(
            "pre-session-cookie", "state-abc")

    entry, values, wrong, right = run_with_redis(redis_url, body)
    assert entry.code_verifier.encode() not in values[0]
    assert b"state-abc" not in values[0]
    assert wrong is None
    assert right == entry
