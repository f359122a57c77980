"""ID tokens (OpenID Connect Core 1.0 §2) and the hashes they carry.

An ID token is signed with the same key as the access tokens and names the client
as its audience. `at_hash` binds it to the access token issued with it (§3.1.3.6):
the left half of the hash of the access token's ASCII octets, base64url-encoded,
with the hash function of the signing algorithm (SHA-256 for RS256 and ES256).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

import jwt

from .keyring import KeyRing

# OpenID Connect gives the ID token no media type of its own; "JWT" is the usual value.
ID_TOKEN_TYPE = "JWT"

_HASHES = {"RS256": hashlib.sha256, "ES256": hashlib.sha256}


def left_half_hash(value: str, algorithm: str) -> str:
    """Return the `at_hash` / `c_hash` of `value` for a token signed with `algorithm`."""
    digest = _HASHES[algorithm](value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def issue_id_token(keyring: KeyRing, issuer: str, client_id: str, user_claims: dict[str, Any],
                   auth_time: int, sid: str, lifetime: int, access_token: str | None,
                   nonce: str | None, amr: tuple[str, ...], now: float | None = None) -> str:
    """Sign an ID token for `client_id` with `user_claims` (which contain `sub`).

    `nonce` is copied only when the authorization request had one; refreshed ID
    tokens carry none (OpenID Connect Core 1.0 §12.2).
    """
    now = time.time() if now is None else now
    key = keyring.signing_key(now)
    issued_at = int(now)
    claims: dict[str, Any] = {
        **user_claims,
        "iss": issuer,
        "aud": client_id,
        "azp": client_id,
        "iat": issued_at,
        "exp": issued_at + lifetime,
        "auth_time": auth_time,
        "sid": sid,
        "amr": list(amr),
        "jti": secrets.token_urlsafe(16),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if access_token is not None:
        claims["at_hash"] = left_half_hash(access_token, key.algorithm)
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm,
                      headers={"kid": key.kid, "typ": ID_TOKEN_TYPE})


def verify_id_token_hint(keyring: KeyRing, issuer: str, token: str) -> dict[str, Any] | None:
    """Return the claims of an ID token this provider issued, or None.

    Used for `id_token_hint` at logout, so an expired token is accepted
    (OpenID Connect RP-Initiated Logout 1.0 §2): the signature, `iss` and the
    required claims are still checked, and the caller checks `aud`.
    """
    try:
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        key = keyring.verification_key(kid) if isinstance(kid, str) else None
        if key is None or header.get("alg") != key.algorithm:
            return None
        # An access token is signed with the same keys; it is not an ID token.
        if str(header.get("typ", "")).lower() in ("at+jwt", "application/at+jwt"):
            return None
        return jwt.decode(token, key.public_key, algorithms=[key.algorithm], issuer=issuer,
                          options={"verify_exp": False, "verify_aud": False,
                                   "require": ["iss", "sub", "aud", "iat"]})
    except (jwt.PyJWTError, TypeError, ValueError, KeyError):
        return None
