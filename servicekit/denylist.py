"""The deny list of revoked access tokens, shared by the provider and the resource servers.

`identity_srv` adds a token's `jti` when the token is revoked (RFC 7009); resource
servers and the gateway check it before they accept a token. The key lives exactly
as long as the token could still be accepted (until its `exp`, plus the leeway the
resource servers allow), so the list never grows past the live tokens.

Keys: `idp:revoked-jti:<sha256 of jti>`. The prefix is fixed here rather than taken
from each service's `redis.key_prefix`, because every service must read the key the
provider wrote.
"""

from __future__ import annotations

import hashlib
import time

import redis.asyncio

KEY_PREFIX = "idp:revoked-jti:"

# Seconds the key outlives the token's `exp`, to cover resource servers' clock leeway.
EXPIRY_MARGIN = 120


def key(jti: str) -> str:
    """Return the Redis key that marks the token with this `jti` as revoked."""
    return KEY_PREFIX + hashlib.sha256(jti.encode("utf-8")).hexdigest()


async def revoke(client: redis.asyncio.Redis, jti: str, expires_at: float) -> None:
    """Deny the token with this `jti` until `expires_at` (Unix seconds) plus the margin.

    A token that has already expired (past the margin) is not stored: nothing would
    accept it anyway.
    """
    ttl = int(expires_at - time.time()) + EXPIRY_MARGIN
    if ttl > 0:
        await client.set(key(jti), b"1", ex=ttl)


async def is_revoked(client: redis.asyncio.Redis, jti: str) -> bool:
    """Return True if the token with this `jti` was revoked and could still be live.

    Raises redis' ConnectionError or TimeoutError when Redis is down: callers must
    then reject the request with 503, never accept the token unchecked.
    """
    return bool(await client.exists(key(jti)))
