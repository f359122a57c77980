"""Sign-in sessions: creation, lookup by cookie value, clients and families, end."""

from __future__ import annotations

from identity_srv.sessions import SessionStore
from tests.identity_storage.conftest import PREFIX


def test_session_round_trip(run_with_redis):
    async def action(client):
        store = SessionStore(client, PREFIX, lifetime=600, remember_lifetime=86400)
        session_id, session = await store.create("818727", ("pwd",), remember=False)
        await store.add_client(session.sid, "movies_mvc_client")
        await store.add_family(session.sid, "fam-1")
        loaded = await store.get(session_id)
        ttls = [await client.ttl(key) for key in await client.keys("*")]
        return session_id, session, loaded, ttls

    session_id, session, loaded, ttls = run_with_redis(action)
    assert loaded.sub == "818727"
    assert loaded.sid == session.sid
    assert loaded.sid != session_id
    assert loaded.amr == ("pwd",)
    assert loaded.clients == frozenset({"movies_mvc_client"})
    assert loaded.families == frozenset({"fam-1"})
    assert len(ttls) == 4
    assert all(0 < ttl <= 600 for ttl in ttls)


def test_remember_me_lifetime(run_with_redis):
    async def action(client):
        store = SessionStore(client, PREFIX, lifetime=600, remember_lifetime=86400)
        await store.create("818727", ("pwd",), remember=True)
        return [await client.ttl(key) for key in await client.keys("*")]

    ttls = run_with_redis(action)
    assert len(ttls) == 2
    assert all(600 < ttl <= 86400 for ttl in ttls)


def test_each_sign_in_new_ids(run_with_redis):
    async def action(client):
        store = SessionStore(client, PREFIX, lifetime=600, remember_lifetime=600)
        return await store.create("818727", ("pwd",), False), await store.create("818727", ("pwd",), False)

    (first_id, first), (second_id, second) = run_with_redis(action)
    assert first_id != second_id
    assert first.sid != second.sid


def test_end_returns_session_and_deletes(run_with_redis):
    async def action(client):
        store = SessionStore(client, PREFIX, lifetime=600, remember_lifetime=600)
        session_id, session = await store.create("88421113", ("pwd",), False)
        await store.add_family(session.sid, "fam-9")
        ended = await store.end(session_id)
        return ended, await store.get(session_id), await client.keys("*"), await store.add_client(session.sid, "x")

    ended, after, keys, added = run_with_redis(action)
    assert ended.families == frozenset({"fam-9"})
    assert after is None
    assert keys == []
    assert added is False


def test_unknown_cookie_has_no_session(run_with_redis):
    async def action(client):
        return await SessionStore(client, PREFIX, 600, 600).get("forged-cookie-value")

    assert run_with_redis(action) is None


def test_end_by_sid(run_with_redis):
    async def action(client):
        store = SessionStore(client, PREFIX, lifetime=600, remember_lifetime=600)
        session_id, session = await store.create("818727", ("pwd",), False)
        await store.add_client(session.sid, "movies_mvc_client")
        ended = await store.end_by_sid(session.sid)
        return ended, await store.get(session_id), await store.end_by_sid(session.sid), await client.keys("*")

    ended, after, again, keys = run_with_redis(action)
    assert ended.sub == "818727"
    assert ended.clients == frozenset({"movies_mvc_client"})
    assert after is None
    assert again is None
    assert keys == []
