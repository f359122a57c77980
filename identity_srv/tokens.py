"""Access tokens: RFC 9068 JWTs signed with the current key, and their verification.

The claims are the contract that movies_srv and gateway_srv validate: `iss`, `sub`,
`aud`, `client_id`, `scope`, `jti`, `iat`, `nbf`, `exp`, with the JWS header `typ`
`at+jwt` and the `kid` of the signing key.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

from .keyring import KeyRing

ACCESS_TOKEN_TYPE = "at+jwt"

# 18 random bytes = 144 bits, above the 128 bits a `jti` needs to be unguessable.
JTI_BYTES = 18

REQUIRED_CLAIMS = ["iss", "sub", "aud", "client_id", "jti", "iat", "exp"]


@dataclass(frozen=True)
class IssuedToken:
    token: str
    claims: dict[str, Any]
    kid: str


def issue_access_token(keyring: KeyRing, issuer: str, subject: str, client_id: str,
                       audience: tuple[str, ...], scopes: tuple[str, ...], lifetime: int,
                       now: float | None = None, extra_claims: dict[str, Any] | None = None) -> IssuedToken:
    """Sign an access token for `audience` with the key that signs now.

    `aud` is a string when there is one audience and a list otherwise (RFC 7519 §4.1.3).
    `extra_claims` (a user's `role`, `name`, `auth_time`) never replace the standard claims.
    """
    now = time.time() if now is None else now
    key = keyring.signing_key(now)
    issued_at = int(now)
    claims: dict[str, Any] = {
        **(extra_claims or {}),
        "iss": issuer,
        "sub": subject,
        "aud": audience[0] if len(audience) == 1 else list(audience),
        "client_id": client_id,
        "scope": " ".join(scopes),
        "jti": secrets.token_urlsafe(JTI_BYTES),
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + lifetime,
    }
    token = jwt.encode(claims, key.private_key, algorithm=key.algorithm,
                       headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYPE})
    return IssuedToken(token=token, claims=claims, kid=key.kid)


def verify_access_token(keyring: KeyRing, issuer: str, token: str) -> dict[str, Any] | None:
    """Return the claims of a valid access token this provider issued, else None.

    Checks the signature with the published key named by `kid` and its own
    algorithm only, `typ`, `iss`, `exp`, `nbf` and the required claims. The
    audience is not checked: the provider answers for tokens of every API. Any
    parsing failure counts as invalid, including the `TypeError` PyJWT raises for
    a signed token whose `exp` is null.
    """
    try:
        header = jwt.get_unverified_header(token)
        key = keyring.verification_key(header.get("kid")) if isinstance(header.get("kid"), str) else None
        if key is None or header.get("typ") != ACCESS_TOKEN_TYPE or header.get("alg") != key.algorithm:
            return None
        return jwt.decode(token, key.public_key, algorithms=[key.algorithm], issuer=issuer,
                          options={"require": REQUIRED_CLAIMS, "verify_aud": False})
    except (jwt.PyJWTError, TypeError, ValueError, KeyError):
        return None
