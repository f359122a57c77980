"""The authorization code grant (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.5).

`validate` redeems the code before it compares anything, so a code is spent even
when the request around it is wrong: a code works once or not at all. The code
carries the user's claims from the moment it was issued, so redeeming it reads
nothing from MongoDB and a MongoDB outage cannot strand a spent code. A code
that comes back after its first redemption has leaked, so every token issued
from it is revoked (RFC 6749 §4.1.2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from servicekit import denylist

from .. import pkce
from ..clients import Client
from ..codes import CodeGrant, Redemption
from ..errors import InvalidGrant
from ..forms import required
from ..provider import Provider
from ..user_tokens import UserGrant, issue_user_tokens
from ..users import User

GRANT_TYPE = "authorization_code"

audit_log = logging.getLogger("identity_srv.audit")


@dataclass(frozen=True)
class AuthorizationCodeRequest:
    grant: UserGrant
    code_grant: CodeGrant


async def revoke_code_grant(provider: Provider, grant_id: str) -> None:
    """Revoke the access tokens and refresh token families issued from one code."""
    issued = await provider.codes.revoke_grant(grant_id)
    for jti, exp in issued.access:
        await denylist.revoke(provider.redis, jti, exp)
    for family_id in issued.families:
        await provider.refresh_tokens.revoke_family(family_id)
    audit_log.warning("tokens of a replayed authorization code revoked: grant=%s access_tokens=%d families=%d",
                      grant_id, len(issued.access), len(issued.families))


async def validate(provider: Provider, client: Client, form: dict[str, str]) -> AuthorizationCodeRequest:
    """Redeem the code and check it against the client, redirect URI and code verifier."""
    code = required(form, "code")
    redirect_uri = required(form, "redirect_uri")
    verifier = required(form, "code_verifier")

    redemption, code_grant = await provider.codes.consume(code)
    if redemption is Redemption.UNKNOWN:
        raise InvalidGrant("the authorization code is invalid or expired")
    if redemption is Redemption.REPLAY:
        audit_log.warning("authorization code replayed: client=%s grant=%s", client.client_id,
                          code_grant.grant_id)
        await revoke_code_grant(provider, code_grant.grant_id)
        raise InvalidGrant("the authorization code was already used")

    # RFC 6749 §4.1.3: the code must have been issued to this client, for this
    # exact redirect URI.
    if code_grant.client_id != client.client_id:
        raise InvalidGrant("the authorization code was issued to another client")
    if code_grant.redirect_uri != redirect_uri:
        raise InvalidGrant("redirect_uri does not match the authorization request")

    # RFC 7636 §4.6: a verifier that does not hash to the challenge is invalid_grant.
    if not pkce.verify(verifier, code_grant.code_challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge")

    user = User(sub=code_grant.sub, username=code_grant.username, password_hash=None,
                claims=code_grant.user_claims)
    grant = UserGrant(client=client, user=user, scopes=tuple(code_grant.scope.split()),
                      auth_time=code_grant.auth_time, sid=code_grant.sid, amr=code_grant.amr,
                      nonce=code_grant.nonce)
    return AuthorizationCodeRequest(grant=grant, code_grant=code_grant)


async def issue(provider: Provider, request: AuthorizationCodeRequest) -> dict[str, Any]:
    """Issue the tokens, record them against the code, and add a refresh token with offline_access."""
    grant = request.grant
    access, response = issue_user_tokens(provider, grant, GRANT_TYPE)
    families = []
    if "offline_access" in grant.scopes and "refresh_token" in grant.client.grant_types:
        refresh_token, family = await provider.refresh_tokens.create(
            grant.client.client_id, grant.user.sub, " ".join(grant.scopes), grant.sid, grant.auth_time,
            grant.amr)
        families.append(family.family_id)
        response["refresh_token"] = refresh_token
        await provider.sessions.add_family(grant.sid, family.family_id)

    recorded = await provider.codes.remember_tokens(
        request.code_grant.grant_id, [(access.claims["jti"], access.claims["exp"])], families)
    if not recorded:
        # A replay of the code arrived while these tokens were being issued.
        await revoke_code_grant(provider, request.code_grant.grant_id)
        raise InvalidGrant("the authorization code was already used")
    return response
