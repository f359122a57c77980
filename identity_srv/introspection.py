"""Token introspection (RFC 7662): is this token active, and what does it carry?"""

from __future__ import annotations

from typing import Any

from servicekit import denylist

from .provider import Provider
from .tokens import verify_access_token

# RFC 7662 §2.2: for any token that is not active, "active" and nothing else, so
# the response does not tell an expired token from a forged or revoked one.
INACTIVE: dict[str, Any] = {"active": False}

# Claims copied from a valid access token into the response (RFC 7662 §2.2 names).
_ANSWER_CLAIMS = ("scope", "client_id", "sub", "aud", "iss", "jti", "iat", "nbf", "exp")


async def introspect(provider: Provider, token: str) -> dict[str, Any]:
    """Return the introspection response for `token`.

    Raises redis' ConnectionError or TimeoutError when Redis is down, so that the
    boundary returns 503 instead of calling a revoked token active.
    """
    claims = verify_access_token(provider.keyring, provider.issuer, token)
    if claims is None:
        return await _introspect_refresh_token(provider, token)
    if not isinstance(claims.get("jti"), str):
        return dict(INACTIVE)
    if await denylist.is_revoked(provider.redis, claims["jti"]):
        return dict(INACTIVE)
    answer = {"active": True, "token_type": "Bearer"}
    answer.update({name: claims[name] for name in _ANSWER_CLAIMS if name in claims})
    return answer


async def _introspect_refresh_token(provider: Provider, token: str) -> dict[str, Any]:
    """Describe a live refresh token: its client, subject, scope and absolute expiry."""
    family = await provider.refresh_tokens.find(token)
    if family is None:
        return dict(INACTIVE)
    return {
        "active": True,
        "token_type": "refresh_token",
        "client_id": family.client_id,
        "sub": family.sub,
        "scope": family.scope,
        "iss": provider.issuer,
        "iat": family.auth_time,
        "exp": family.absolute_expiry,
    }
