"""Steps 3 and 4 of the gateway's pipeline: the bearer token and the rate limits.

The token's signature and claims are checked in this process (a validated token
is remembered until its `exp`, see `servicekit.resource.validator`). What needs
Redis, the token's deny-list entry and the route's rate-limit counters, goes out
in one call (`RedisChecks`), so admitting a request costs one Redis round trip
however many of these checks the route has.

The checks are judged in the order a client can act on: a revoked token (401),
then the route's policy (403), then the rate limits (429). Every request that
carries a valid signature is counted, including one refused for its scopes.
Redis errors propagate, and the request boundary returns 503, so no request is let
through unchecked or uncounted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio
from redis.asyncio.cluster import RedisCluster
import tornado.web

from servicekit import denylist
from servicekit.resource import AccessToken, AccessTokenValidator, bearer_token

from .ratelimit import Counter, RateLimiter, rate_limit_headers
from .routes import Route


@dataclass(frozen=True)
class Admitted:
    """The claims and extra response headers of an admitted request."""

    claims: Mapping[str, Any] = field(default_factory=dict)
    # The RateLimit headers for the response; empty without rate limits.
    headers: Mapping[str, str] = field(default_factory=dict)


class Admission:
    def __init__(self, client: redis.asyncio.Redis | RedisCluster, validator: AccessTokenValidator,
                 rate_limiter: RateLimiter):
        self._checks = RedisChecks(client)
        self.validator = validator
        self._rate_limiter = rate_limiter

    async def admit(self, handler: tornado.web.RequestHandler, route: Route) -> Admitted:
        """Authenticate and count the request on `route`; raise the first 401, 403 or 429."""
        token = await self._verify(handler) if route.auth is not None else None
        counters = []
        if route.rate_limit is not None:
            client_id = token.client_id if token is not None else None
            user = token.subject if token is not None and not token.is_machine else None
            counters = self._rate_limiter.counters(route.name, route.rate_limit, client_id,
                                                   handler.request.remote_ip, user)
        if token is None and not counters:
            return Admitted()

        revoked, replies = await self._checks.check_and_count(token.jti if token else None, counters)
        if token is not None:
            if revoked:
                raise self.validator.revoked(token)
            route.auth.check(token, self.validator.settings.realm)
        quotas = RateLimiter.judge(route.name, counters, replies)
        return Admitted(claims=token.claims if token is not None else {}, headers=rate_limit_headers(quotas))

    async def _verify(self, handler: tornado.web.RequestHandler) -> AccessToken:
        realm = self.validator.settings.realm
        token = await self.validator.verify_signature_and_claims(bearer_token(handler.request, realm))
        handler.log_client_id = token.client_id
        handler.log_subject = token.subject
        return token


# KEYS: the token's deny-list key when ARGV[1] is "1", then one key per counter.
# ARGV[2], ARGV[3], ...: each counter's window in seconds and its limit, in turn.
# Counters are incremented in order up to the first one past its limit. The ones
# after it are only read, because a refused request must not use their budget.
# Returns {revoked (0 or 1), {count, ttl} for each counter}.
_ADMISSION_SCRIPT = """
local result = {0}
local first = 1
if ARGV[1] == '1' then
  result[1] = redis.call('EXISTS', KEYS[1])
  first = 2
end
local rejected = false
for i = first, #KEYS do
  local window = tonumber(ARGV[2 * (i - first) + 2])
  local limit = tonumber(ARGV[2 * (i - first) + 3])
  local count
  if rejected then
    count = tonumber(redis.call('GET', KEYS[i]) or '0')
  else
    count = redis.call('INCR', KEYS[i])
  end
  local ttl = redis.call('TTL', KEYS[i])
  if ttl < 0 then
    if not rejected then
      redis.call('EXPIRE', KEYS[i], window)
    end
    ttl = window
  end
  if count > limit then
    rejected = true
  end
  result[#result + 1] = {count, ttl}
end
return result
"""


class RedisChecks:
    """Read a token's deny-list entry and increment rate-limit counters in one round trip.

    On one Redis server (or a Sentinel's primary) a Lua script does all of it in
    one call, which costs the gateway less CPU than a pipeline of several
    commands. On a Redis Cluster the keys live in different slots, which one
    script may not touch, so they go in one pipeline instead: redis-py splits it
    by node and sends the parts concurrently.
    """

    def __init__(self, client: redis.asyncio.Redis | RedisCluster):
        self._client = client
        self._script = None if isinstance(client, RedisCluster) else client.register_script(_ADMISSION_SCRIPT)

    async def check_and_count(self, jti: str | None, counters: list[Counter]) -> tuple[bool, list[list[int]]]:
        """Return whether `jti` is revoked (False when None) and each counter's `[count, ttl]`."""
        if self._script is None:
            return await self._pipeline(jti, counters)
        keys = [counter.key for counter in counters]
        if jti is not None:
            keys.insert(0, denylist.key(jti))
        args = ["1" if jti is not None else "0"]
        for counter in counters:
            args += [counter.limit.window, counter.limit.requests]
        reply = await self._script(keys=keys, args=args)
        return bool(reply[0]), reply[1:]

    async def _pipeline(self, jti: str | None, counters: list[Counter]) -> tuple[bool, list[list[int]]]:
        async with self._client.pipeline(transaction=False) as pipeline:
            if jti is not None:
                pipeline.exists(denylist.key(jti))
            for counter in counters:
                RateLimiter.increment(pipeline, counter)
            replies = await pipeline.execute()
        revoked = bool(replies[0]) if jti is not None else False
        counts = replies[1:] if jti is not None else replies
        return revoked, await RateLimiter.undo_after_rejection(self._client, counters, counts)
