"""Rate limits counted in Redis, so every gateway process shares one budget.

Fixed windows: the first request of a key starts a window of `window` seconds
(the key's TTL in Redis). A request counts against each limit in the order user,
client, address, up to and including the first limit that refuses it. So a
refused request uses up the budget that refused it, and retrying in a loop does
not help. It does not use the budgets after that one, which other users share. Each
counter is incremented by Lua in the request's one Redis call (`admission.py`):
one script for all counters on a single Redis server, and on a Redis Cluster,
where the counters hash to different slots, one script call per counter in one
pipeline. Because the window starts at Redis' first INCR, gateway processes with
skewed clocks still share exact windows.

Keys: `<prefix>rl:<route>:client:<sha256 of client id>`,
`<prefix>rl:<route>:user:<sha256 of sub>` and `<prefix>rl:<route>:addr:<client address>`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio.client import Pipeline

from .errors import TooManyRequests, route_problem
from .routes import RateLimit, RateLimitPolicy

# KEYS[1]: the counter. ARGV[1]: its window in seconds. Returns {count, ttl}.
# Used on a Redis Cluster, one call per counter in a pipeline. It is sent with
# EVAL because EVALSHA fails with NOSCRIPT on a node that has not loaded it yet.
_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""

# KEYS[1]: a counter incremented by a request that an earlier limit refused.
# Decrements it unless its window ended meanwhile, which would leave a key of -1.
_UNDO_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('DECR', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class Counter:
    """One counter a request increments: `user`, `client` or `address`, its key and its limit."""

    name: str
    key: str
    limit: RateLimit


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
    """Name a request's counters, queue them on a cluster pipeline, and judge the replies."""

    def __init__(self, key_prefix: str):
        self._prefix = key_prefix

    def counters(self, route: str, policy: RateLimitPolicy, client_id: str | None,
                 address: str, user: str | None = None) -> list[Counter]:
        """Return the counters this request increments on `route`.

        `user` is the `sub` of a user's token: None for a machine token or no token.
        """
        counters = []
        if policy.per_user and user:
            digest = hashlib.sha256(user.encode()).hexdigest()
            counters.append(Counter("user", f"{self._prefix}rl:{route}:user:{digest}", policy.per_user))
        if policy.per_client and client_id:
            digest = hashlib.sha256(client_id.encode()).hexdigest()
            counters.append(Counter("client", f"{self._prefix}rl:{route}:client:{digest}", policy.per_client))
        if policy.per_address:
            counters.append(Counter("address", f"{self._prefix}rl:{route}:addr:{address}", policy.per_address))
        return counters

    @staticmethod
    def increment(pipeline: Pipeline, counter: Counter) -> None:
        """Queue the increment of `counter` on a cluster `pipeline`; its reply is `[count, ttl]`."""
        pipeline.eval(_SCRIPT, 1, counter.key, counter.limit.window)

    @staticmethod
    async def undo_after_rejection(client, counters: Sequence[Counter],
                                 replies: Sequence[Sequence[int]]) -> list[list[int]]:
        """Take back the increments of the counters after the first refusing one.

        On a Redis Cluster every counter was incremented in one pipeline, so a
        second round trip, needed only for a refused request, gives back what the
        admission script on one server never takes. Returns the corrected replies.
        NOTE: until that round trip ends, other requests see those counters one
        too high, and one at its limit may be refused.
        """
        corrected = [list(reply) for reply in replies]
        rejected_at = next((i for i, (counter, (count, _)) in enumerate(zip(counters, replies))
                           if count > counter.limit.requests), None)
        if rejected_at is None or rejected_at == len(counters) - 1:
            return corrected
        async with client.pipeline(transaction=False) as pipeline:
            for counter in counters[rejected_at + 1:]:
                pipeline.eval(_UNDO_SCRIPT, 1, counter.key)
            await pipeline.execute()
        for reply in corrected[rejected_at + 1:]:
            reply[0] -= 1
        return corrected

    @staticmethod
    def judge(route: str, counters: Sequence[Counter], replies: Sequence[Sequence[int]]) -> list[Quota]:
        """Return the quotas after this request; raise 429 when one is exceeded.

        A refused request was counted by the limit that refused it and by those
        before it, so retrying in a loop does not help a client.
        """
        quotas = [Quota(c.name, c.limit, int(count), int(ttl)) for c, (count, ttl) in zip(counters, replies)]
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
