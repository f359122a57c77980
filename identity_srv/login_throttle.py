"""Brute-force protection for the sign-in form, counted in Redis.

Failed sign-ins are counted per username and per client address, so the limits
hold across every provider instance. Past `delay_after` failures each further
attempt must wait twice as long as the previous one (1, 2, 4 ... seconds, at most
`max_delay`); past `lock_after` failures the username or address is locked for
`lock_seconds`. Counters reset `window` seconds after the last failure, and a
successful sign-in resets the username's counter.

Usernames are counted whether or not they exist, so the response to a locked or
delayed attempt is the same for a real user and an invented one. A per-username
lock lets anyone lock a known username out for `lock_seconds`; that is the usual
trade-off against password guessing, and the per-address limit is set higher so a
shared address is not locked first.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

import redis.asyncio

from .users import username_key

# KEYS[1] counter; ARGV: now (ms), window, delay_after, lock_after, lock_seconds, max_delay.
# Returns the Unix time in milliseconds before which no further attempt is accepted.
# Times are whole milliseconds because Lua numbers print with 14 digits only.
_RECORD_FAILURE = """
local now = tonumber(ARGV[1])
local count = redis.call('HINCRBY', KEYS[1], 'count', 1)
local wait = 0
if count >= tonumber(ARGV[4]) then
  wait = tonumber(ARGV[5])
elseif count > tonumber(ARGV[3]) then
  wait = math.min(2 ^ (count - tonumber(ARGV[3]) - 1), tonumber(ARGV[6]))
end
local blocked_until = now + wait * 1000
redis.call('HSET', KEYS[1], 'blocked_until', blocked_until)
redis.call('EXPIRE', KEYS[1], math.max(tonumber(ARGV[2]), math.ceil(wait)))
return blocked_until
"""


def _seconds_until(blocked_until_ms: list[int], now_ms: int) -> int:
    """Return the whole seconds, rounded up, until the latest block ends."""
    latest = max([now_ms, *blocked_until_ms])
    return math.ceil((latest - now_ms) / 1000)


@dataclass(frozen=True)
class ThrottleLimits:
    delay_after: int
    lock_after: int
    lock_seconds: int
    max_delay: int
    window: int


class LoginThrottle:
    """Counts failed sign-ins; `user` and `address` limits apply separately."""

    def __init__(self, client: redis.asyncio.Redis, prefix: str, user: ThrottleLimits,
                 address: ThrottleLimits):
        self._redis = client
        self._prefix = prefix
        self._limits = {"user": user, "addr": address}
        self._record = client.register_script(_RECORD_FAILURE)

    def _key(self, kind: str, value: str) -> str:
        digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
        return f"{self._prefix}login-fail:{kind}:{digest}"

    def _keys(self, username: str, address: str) -> dict[str, str]:
        return {"user": self._key("user", username_key(username)), "addr": self._key("addr", address)}

    async def retry_after(self, username: str, address: str) -> int:
        """Return how many seconds to wait before the next attempt; 0 allows it now."""
        keys = self._keys(username, address)
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys.values():
                pipe.hget(key, "blocked_until")
            values = await pipe.execute()
        now_ms = time.time_ns() // 1_000_000
        return _seconds_until([int(value) for value in values if value is not None], now_ms)

    async def record_failure(self, username: str, address: str) -> int:
        """Count a failed attempt; return the seconds to wait before the next one."""
        now_ms = time.time_ns() // 1_000_000
        blocked = []
        for kind, key in self._keys(username, address).items():
            limits = self._limits[kind]
            blocked.append(int(await self._record(keys=[key], args=[
                now_ms, limits.window, limits.delay_after, limits.lock_after, limits.lock_seconds,
                limits.max_delay])))
        return _seconds_until(blocked, now_ms)

    async def record_success(self, username: str) -> None:
        """Reset the username's counter; the address counter keeps counting."""
        await self._redis.delete(self._keys(username, "")["user"])
