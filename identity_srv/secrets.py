"""Client secrets: stored as SHA-256 digests and compared in constant time.

Client secrets are generated, high-entropy values (at least 128 random bits), not
passwords a person chose, so a single SHA-256 pass is enough to make a leaked
digest useless and a slow hash such as bcrypt would only add a CPU-bound delay to
every token request. This reasoning does not hold for user passwords, which use bcrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import re

PREFIX = "sha256:"
HASH_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")

# The digest of "secret", the development secret of the demo clients.
DEVELOPMENT_SECRET_HASH = "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"


def hash_secret(secret: str) -> str:
    """Return the stored form of `secret`: "sha256:" and the hex digest of its UTF-8 bytes."""
    return PREFIX + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def verify_secret(secret: str, stored_hash: str) -> bool:
    """Return True if `secret` hashes to `stored_hash`, comparing the digests in constant time."""
    return hmac.compare_digest(hash_secret(secret).encode("ascii"), stored_hash.encode("ascii"))
