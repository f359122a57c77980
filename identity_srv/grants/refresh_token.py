"""The refresh token grant (RFC 6749 §6) with rotation and reuse detection.

Every use returns a new refresh token and spends the old one. The family of
tokens, its lifetimes and the reuse rules live in `identity_srv.refresh_tokens`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..clients import Client
from ..errors import InvalidGrant, InvalidScope
from ..forms import required
from ..provider import Provider
from ..refresh_tokens import Rotation
from ..scopes import parse_scope
from ..user_tokens import UserGrant, issue_user_tokens

GRANT_TYPE = "refresh_token"

audit_log = logging.getLogger("identity_srv.audit")

_FAILURES = {
    Rotation.UNKNOWN: "the refresh token is invalid or expired",
    Rotation.REVOKED: "the refresh token was revoked",
    Rotation.REUSED: "the refresh token was already used; its grant is revoked",
    Rotation.CONCURRENT: "the refresh token was just used by another request",
    Rotation.WRONG_CLIENT: "the refresh token was issued to another client",
}


@dataclass(frozen=True)
class RefreshRequest:
    grant: UserGrant
    refresh_token: str


async def validate(provider: Provider, client: Client, form: dict[str, str]) -> RefreshRequest:
    """Rotate the refresh token; the requested scope may only narrow the original one."""
    token = required(form, "refresh_token")
    requested = parse_scope(form.get("scope"))

    # Everything that can fail without the token being at fault (a narrowed scope,
    # the user lookup in MongoDB) runs before the rotation spends the token. A
    # token that is not the family's current one skips this and gets its precise
    # error from the rotation.
    current = await provider.refresh_tokens.find(token)
    user = None
    if current is not None and current.client_id == client.client_id:
        original = current.scope.split()
        for scope in requested:
            if scope not in original:
                raise InvalidScope(f"scope {scope!r} was not granted with this refresh token")
        user = await provider.users.find_by_subject(current.sub)
        if user is None:
            await provider.refresh_tokens.revoke_family(current.family_id)
            raise InvalidGrant("the user of this refresh token no longer exists")

    status, new_token, family = await provider.refresh_tokens.rotate(token, client.client_id)
    if status is not Rotation.ROTATED:
        if status is Rotation.REUSED:
            audit_log.warning("refresh token reused, family revoked: client=%s", client.client_id)
        raise InvalidGrant(_FAILURES[status])

    if user is None or user.sub != family.sub:
        # Defensive: `find` returned this family unless Redis changed between the calls.
        user = await provider.users.find_by_subject(family.sub)
        if user is None:
            await provider.refresh_tokens.revoke_family(family.family_id)
            raise InvalidGrant("the user of this refresh token no longer exists")
    scopes = requested or tuple(family.scope.split())
    grant = UserGrant(client=client, user=user, scopes=scopes, auth_time=family.auth_time, sid=family.sid,
                      amr=family.amr)
    return RefreshRequest(grant=grant, refresh_token=new_token)


async def issue(provider: Provider, request: RefreshRequest) -> dict[str, Any]:
    """Return new tokens; the refresh token keeps the family's full scope (RFC 6749 §6)."""
    _, response = issue_user_tokens(provider, request.grant, GRANT_TYPE)
    response["refresh_token"] = request.refresh_token
    return response
