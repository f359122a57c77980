"""Rate limits counted in Redis, so every gateway process shares one budget.

Fixed windows: the first request of a key starts a window of `window` seconds
(the key's TTL in Redis), and every request in it, allowed or not, counts. A Lua
script increments one counter and returns its count with the remaining TTL; the
client's and the address's counters are sent at once, so a request waits about
one round trip. The script touches one key per call because the two counters
hash to different slots of a Redis Cluster. Because the window starts at Redis'
first INCR, gateway processes with skewed clocks still share exact windows.

Keys: `<prefix>rl:<route>:client:<sha256 of client id>` and
`<prefix>rl:<route>:addr:<client address>`.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

import redis.asyncio

from .errors import TooManyRequests, route_problem
from .routes import RateLimit, RateLimitPolicy

# KEYS[1]: the counter. ARGV[1]: its window in seconds. Returns {count, ttl}.
_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


@dataclass(frozen=True)
class Quota:
    """One counted limit after this request: its name, the limit and what is left."""

    name: str
    limit: RateLimit
    count: int
    reset: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit.requests - self.count)


def rate_limit_headers(quotas: list[Quota]) -> dict[str, str]:
    """Return `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10).

    The `RateLimit` field reports the quota closest to exhaustion.
    """
    if not quotas:
        return {}
    policy = ", ".join(f'"{q.name}";q={q.limit.requests};w={q.limit.window}' for q in quotas)
    tightest = min(quotas, key=lambda q: (q.remaining, -q.reset))
    return {
        "RateLimit-Policy": policy,
        "RateLimit": f'"{tightest.name}";r={tightest.remaining};t={tightest.reset}',
    }


class RateLimiter:
    def __init__(self, client: redis.asyncio.Redis, key_prefix: str):
        self._script = client.register_script(_SCRIPT)
        self._prefix = key_prefix

    async def check(self, route: str, policy: RateLimitPolicy, client_id: str | None,
                    address: str) -> list[Quota]:
        """Count this request and return the quotas; raise 429 when one is exceeded.

        Redis errors propagate and the request boundary turns them into 503, so
        the gateway never lets a request through uncounted.
        """
        counted: list[tuple[str, str, RateLimit]] = []
        if policy.per_client and client_id:
            digest = hashlib.sha256(client_id.encode()).hexdigest()
            counted.append(("client", f"{self._prefix}rl:{route}:client:{digest}", policy.per_client))
        if policy.per_address:
            counted.append(("address", f"{self._prefix}rl:{route}:addr:{address}", policy.per_address))
        if not counted:
            return []
        replies = await asyncio.gather(*(self._script(keys=[key], args=[limit.window])
                                         for _, key, limit in counted))
        quotas = [Quota(name, limit, int(count), int(ttl))
                  for (name, _, limit), (count, ttl) in zip(counted, replies)]
        exceeded = [q for q in quotas if q.count > q.limit.requests]
        if exceeded:
            wait = max(q.reset for q in exceeded)
            headers = {"Retry-After": str(wait), **rate_limit_headers(quotas)}
            raise route_problem(TooManyRequests, route,
                                f"rate limit exceeded: {exceeded[0].limit.requests} requests per "
                                f"{exceeded[0].limit.window}s per {exceeded[0].name}; retry in {wait}s",
                                headers=headers,
                                log_detail=f"rate limit per {exceeded[0].name} exceeded on route {route}")
        return quotas
