"""Proof Key for Code Exchange (RFC 7636), S256 only.

The `plain` method is not offered because its challenge equals the verifier, so
anyone who reads the authorization request can redeem the code. Every client must
send a challenge, public or confidential, so a missing one is an error and never
a downgrade to no PKCE.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

METHOD = "S256"

# RFC 7636 §4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# The base64url encoding of a 32-byte SHA-256 digest, without padding, is 43 characters.
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def is_valid_challenge(challenge: str) -> bool:
    """Return True if `challenge` has the form of an S256 challenge."""
    return bool(_CHALLENGE.match(challenge))


def is_valid_verifier(verifier: str) -> bool:
    return bool(_VERIFIER.match(verifier))


def challenge_of(verifier: str) -> str:
    """Return the S256 challenge of `verifier`: BASE64URL(SHA256(ASCII(verifier)))."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(verifier: str, challenge: str) -> bool:
    """Return True if `verifier` is well formed and hashes to `challenge` (constant time)."""
    if not is_valid_verifier(verifier):
        return False
    return hmac.compare_digest(challenge_of(verifier), challenge)
