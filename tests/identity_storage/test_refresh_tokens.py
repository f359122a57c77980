"""Refresh token families: rotation, reuse detection, grace for parallel use, lifetimes."""

from __future__ import annotations

import asyncio
import time

from identity_srv.refresh_tokens import RefreshTokenStore, Rotation, family_of
from tests.identity_storage.conftest import PREFIX

CLIENT = "movies_mvc_client"


def store_for(client, idle=3600, absolute=86400, grace=2.0):
    return RefreshTokenStore(client, PREFIX, idle_lifetime=idle, absolute_lifetime=absolute, reuse_grace=grace)


async def new_family(store, auth_time=None):
    return await store.create(CLIENT, "818727", "openid offline_access movieAPI", "sid-1",
                              auth_time or int(time.time()))


def test_rotation_returns_new_token(run_with_redis):
    async def action(client):
        store = store_for(client)
        token, family = await new_family(store)
        return token, family, await store.rotate(token, CLIENT)

    token, family, (status, new_token, rotated) = run_with_redis(action)
    assert status is Rotation.ROTATED
    assert new_token != token
    assert family_of(new_token) == family.family_id
    assert rotated == family


def test_reuse_after_grace_revokes_family(run_with_redis):
    async def action(client):
        store = store_for(client, grace=0)
        first, _ = await new_family(store)
        _, second, _ = await store.rotate(first, CLIENT)
        await asyncio.sleep(1.1)
        reuse = await store.rotate(first, CLIENT)
        after = await store.rotate(second, CLIENT)
        return reuse, after

    reuse, after = run_with_redis(action)
    assert reuse == (Rotation.REUSED, None, None)
    assert after == (Rotation.REVOKED, None, None)


def test_parallel_use_one_winner_no_revocation(run_with_redis):
    async def action(client):
        store = store_for(client)
        token, _ = await new_family(store)
        results = await asyncio.gather(*(store.rotate(token, CLIENT) for _ in range(10)))
        winners = [new for status, new, _ in results if status is Rotation.ROTATED]
        follow_up = await store.rotate(winners[0], CLIENT)
        return [status for status, _, _ in results], follow_up[0]

    statuses, follow_up = run_with_redis(action)
    assert statuses.count(Rotation.ROTATED) == 1
    assert statuses.count(Rotation.CONCURRENT) == 9
    assert follow_up is Rotation.ROTATED


def test_token_of_other_client_changes_nothing(run_with_redis):
    async def action(client):
        store = store_for(client)
        token, _ = await new_family(store)
        wrong = await store.rotate(token, "movieClient")
        right = await store.rotate(token, CLIENT)
        return wrong[0], right[0]

    assert run_with_redis(action) == (Rotation.WRONG_CLIENT, Rotation.ROTATED)


def test_forged_secret_in_known_family_revokes(run_with_redis):
    async def action(client):
        store = store_for(client, grace=0)
        token, family = await new_family(store)
        forged = await store.rotate(f"{family.family_id}.forged", CLIENT)
        real = await store.rotate(token, CLIENT)
        return forged[0], real[0]

    assert run_with_redis(action) == (Rotation.REUSED, Rotation.REVOKED)


def test_malformed_and_unknown_tokens(run_with_redis):
    async def action(client):
        store = store_for(client)
        return [(await store.rotate(token, CLIENT))[0] for token in ["", "no-dot", ".x", "x.", "nofamily.abc"]]

    assert run_with_redis(action) == [Rotation.UNKNOWN] * 5


def test_idle_lifetime_expires_family(run_with_redis):
    async def action(client):
        store = store_for(client, idle=1)
        token, _ = await new_family(store)
        await asyncio.sleep(2.1)
        return (await store.rotate(token, CLIENT))[0]

    assert run_with_redis(action) is Rotation.UNKNOWN


def test_absolute_lifetime_counts_from_sign_in(run_with_redis):
    async def action(client):
        store = store_for(client, absolute=3600)
        token, _ = await new_family(store, auth_time=int(time.time()) - 3599)
        await asyncio.sleep(1.5)
        return (await store.rotate(token, CLIENT))[0]

    assert run_with_redis(action) is Rotation.UNKNOWN


def test_revoke_family_and_find(run_with_redis):
    async def action(client):
        store = store_for(client)
        token, family = await new_family(store)
        found = await store.find(token)
        revoked = await store.revoke_family(family.family_id)
        return found, revoked, await store.find(token), (await store.rotate(token, CLIENT))[0]

    found, revoked, after, status = run_with_redis(action)
    assert found is not None
    assert found.sub == "818727"
    assert revoked is True
    assert after is None
    assert status is Rotation.REVOKED


def test_no_token_value_in_redis(run_with_redis):
    async def action(client):
        token, _ = await new_family(store_for(client))
        keys = await client.keys("*")
        values = [await client.hgetall(key) for key in keys]
        return token, repr(keys) + repr(values)

    token, dump = run_with_redis(action)
    assert token.split(".", 1)[1] not in dump


def test_grace_is_not_rounded_to_seconds(run_with_redis):
    async def action(client):
        store = store_for(client, grace=0.5)
        first, _ = await new_family(store)
        _, second, _ = await store.rotate(first, CLIENT)
        within = await store.rotate(first, CLIENT)
        await asyncio.sleep(0.7)
        past = await store.rotate(first, CLIENT)
        return within[0], past[0]

    assert run_with_redis(action) == (Rotation.CONCURRENT, Rotation.REUSED)
