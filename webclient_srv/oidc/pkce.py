"""PKCE (RFC 7636) with the S256 method, the only one the provider accepts."""

from __future__ import annotations

import base64
import hashlib
import secrets

# 32 random bytes give a 43-character verifier, the minimum length of RFC 7636 §4.1.
VERIFIER_BYTES = 32


def new_verifier() -> str:
    """Return a fresh `code_verifier` of 43 unreserved characters."""
    return secrets.token_urlsafe(VERIFIER_BYTES)


def s256_challenge(verifier: str) -> str:
    """Return BASE64URL(SHA256(ASCII(verifier))) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
