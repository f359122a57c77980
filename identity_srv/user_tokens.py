"""Tokens for a signed-in user: the access token, the ID token and their audit line.

The authorization code and refresh token grants both end here, so a user's tokens
look the same whichever grant issued them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .claims import access_token_claims, identity_claims
from .clients import Client
from .id_tokens import issue_id_token
from .provider import Provider
from .tokens import IssuedToken, issue_access_token
from .users import User

audit_log = logging.getLogger("identity_srv.audit")


@dataclass(frozen=True)
class UserGrant:
    """A signed-in user's grant: the user, sign-in time, session and the scopes the tokens carry."""

    client: Client
    user: User
    scopes: tuple[str, ...]
    auth_time: int
    sid: str
    amr: tuple[str, ...]
    nonce: str | None = None


def user_audience(provider: Provider, scopes: tuple[str, ...]) -> tuple[str, ...]:
    """Return the `aud` of a user's access token.

    The audience is the API resources of the granted API scopes. With identity
    scopes only, it is the provider itself, because the token is then good for
    the UserInfo endpoint only.
    """
    audience = provider.registry.audience(tuple(scope for scope in scopes if scope in provider.registry.api_scopes))
    return audience or (provider.issuer,)


def issue_user_tokens(provider: Provider, grant: UserGrant, grant_type: str) -> tuple[IssuedToken, dict[str, Any]]:
    """Sign the access token and, with scope `openid`, the ID token; return the token response.

    The response has no `refresh_token`; the grant adds it when it issues one.
    """
    audience = user_audience(provider, grant.scopes)
    extra = access_token_claims(provider.registry, grant.user, audience)
    extra["auth_time"] = grant.auth_time
    access = issue_access_token(
        provider.keyring, provider.issuer, subject=grant.user.sub, client_id=grant.client.client_id,
        audience=audience, scopes=grant.scopes, lifetime=grant.client.access_token_lifetime,
        extra_claims=extra)
    response: dict[str, Any] = {
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": grant.client.access_token_lifetime,
        "scope": access.claims["scope"],
    }
    if "openid" in grant.scopes:
        response["id_token"] = issue_id_token(
            provider.keyring, provider.issuer, grant.client.client_id,
            identity_claims(provider.registry, grant.user, grant.scopes), auth_time=grant.auth_time,
            sid=grant.sid, lifetime=provider.settings.signin.id_token_lifetime, access_token=access.token,
            nonce=grant.nonce, amr=grant.amr)
    audit_log.info("access token issued: client=%s grant=%s sub=%s jti=%s kid=%s scope=%s exp=%d",
                   grant.client.client_id, grant_type, grant.user.sub, access.claims["jti"], access.kid,
                   access.claims["scope"], access.claims["exp"])
    return access, response
