"""Authorization codes: single use, expiry, replay detection and revocation of issued tokens."""

from __future__ import annotations

import asyncio
import hashlib
import time

from identity_srv.codes import CodeGrant, CodeStore, Redemption
from tests.identity_storage.conftest import PREFIX

GRANT = CodeGrant(
    grant_id="g1", client_id="movies_mvc_client", redirect_uri="http://localhost:5002/signin-oidc",
    code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", scope="openid movieAPI",
    sub="818727", sid="sid-1", auth_time=1_700_000_000, amr=("pwd",), nonce="n-1",
)


def test_code_redeemed_once_then_replay(run_with_redis):
    async def action(client):
        store = CodeStore(client, PREFIX)
        code = await store.issue(GRANT)
        return code, await store.consume(code), await store.consume(code)

    code, first, second = run_with_redis(action)
    assert len(code) >= 43
    assert first == (Redemption.FIRST_USE, GRANT)
    assert second == (Redemption.REPLAY, GRANT)


def test_code_stored_under_hash_only(run_with_redis):
    async def action(client):
        code = await CodeStore(client, PREFIX).issue(GRANT)
        return code, [key.decode() for key in await client.keys("*")], await client.ttl(
            f"{PREFIX}code:{{{hashlib.sha256(code.encode()).hexdigest()}}}")

    code, keys, ttl = run_with_redis(action)
    assert keys == [f"{PREFIX}code:{{{hashlib.sha256(code.encode()).hexdigest()}}}"]
    assert code not in "".join(keys)
    assert 55 <= ttl <= 60


def test_unknown_code(run_with_redis):
    result = run_with_redis(lambda client: CodeStore(client, PREFIX).consume("never-issued"))
    assert result == (Redemption.UNKNOWN, None)


def test_expired_code_is_unknown(run_with_redis):
    async def action(client):
        store = CodeStore(client, PREFIX, lifetime=1)
        code = await store.issue(GRANT)
        await asyncio.sleep(1.5)
        return await store.consume(code)

    assert run_with_redis(action) == (Redemption.UNKNOWN, None)


def test_concurrent_redemptions_one_winner(run_with_redis):
    async def action(client):
        store = CodeStore(client, PREFIX)
        code = await store.issue(GRANT)
        return await asyncio.gather(*(store.consume(code) for _ in range(20)))

    outcomes = [redemption for redemption, _ in run_with_redis(action)]
    assert outcomes.count(Redemption.FIRST_USE) == 1
    assert outcomes.count(Redemption.REPLAY) == 19


def test_replay_revokes_issued_tokens(run_with_redis):
    exp = int(time.time()) + 3600

    async def action(client):
        store = CodeStore(client, PREFIX)
        kept = await store.remember_tokens("g1", [("jti-1", exp)], ["family-1"])
        issued = await store.revoke_grant("g1")
        late = await store.remember_tokens("g1", [("jti-2", exp)], [])
        return kept, issued, late

    kept, issued, late = run_with_redis(action)
    assert kept is True
    assert issued.access == (("jti-1", exp),)
    assert issued.families == ("family-1",)
    # Tokens recorded after the replay must be revoked by the caller.
    assert late is False
