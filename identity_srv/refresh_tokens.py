"""Refresh tokens in families: rotation on every use, reuse detection, two lifetimes.

A refresh token is `<family id>.<256 random bits>`. Redis keeps one hash per family
under `<prefix>rtf:{<family id>}` (a Redis Cluster hash tag) holding the grant
(client, subject, scope, session) and the SHA-256 of the family's current token,
never a token itself.

Every use rotates: the presented token must be the current one, and a new one
replaces it (RFC 9700 §4.14.2). Presenting any other token of the family means a
token leaked, so the whole family is revoked, including the current token. One
exception keeps honest clients working: a second request with the token that was
rotated less than `reuse_grace` seconds ago (two tabs refreshing at once) fails
with `CONCURRENT` and revokes nothing.

The family expires after `idle_lifetime` seconds without use and in any case at
`absolute_lifetime` seconds after the sign-in.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from enum import Enum

import redis.asyncio

# KEYS[1] family; ARGV: presented hash, new hash, now (ms), idle TTL (s), grace (ms), client id.
# `rotated_at` is in milliseconds so that the grace is not rounded to whole seconds;
# `absolute_expiry` is in seconds for EXPIREAT.
# Returns {status} or {1, field, value, ...} after a rotation. Lua compares SHA-256
# digests of tokens, not tokens, so its non-constant-time `==` leaks nothing useful.
_ROTATE = """
local f = redis.call('HMGET', KEYS[1], 'current', 'previous', 'rotated_at', 'absolute_expiry',
                      'revoked', 'client_id')
if not f[1] then return {0} end
if f[5] == '1' then return {3} end
local now_ms = tonumber(ARGV[3])
local now = math.floor(now_ms / 1000)
local absolute = tonumber(f[4])
if now_ms >= absolute * 1000 then
  redis.call('DEL', KEYS[1])
  return {0}
end
if f[6] ~= ARGV[6] then return {5} end
if f[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'current', ARGV[2], 'previous', ARGV[1], 'rotated_at', ARGV[3])
  redis.call('EXPIRE', KEYS[1], math.max(1, math.min(tonumber(ARGV[4]), absolute - now)))
  local result = redis.call('HGETALL', KEYS[1])
  table.insert(result, 1, 1)
  return result
end
if f[2] == ARGV[1] and now_ms - tonumber(f[3]) < tonumber(ARGV[5]) then
  return {2}
end
redis.call('HSET', KEYS[1], 'revoked', '1')
redis.call('EXPIREAT', KEYS[1], absolute)
return {4}
"""

# KEYS[1] family. Marks it revoked and keeps it until its absolute expiry, so that
# its tokens keep failing as revoked rather than as unknown. Returns 1 if it existed.
_REVOKE = """
local absolute = redis.call('HGET', KEYS[1], 'absolute_expiry')
if not absolute then return 0 end
redis.call('HSET', KEYS[1], 'revoked', '1')
redis.call('EXPIREAT', KEYS[1], absolute)
return 1
"""


class Rotation(Enum):
    ROTATED = 1
    CONCURRENT = 2
    REVOKED = 3
    REUSED = 4
    WRONG_CLIENT = 5
    UNKNOWN = 0


@dataclass(frozen=True)
class Family:
    """The grant behind a family of refresh tokens."""

    family_id: str
    client_id: str
    sub: str
    scope: str
    sid: str
    auth_time: int
    absolute_expiry: int
    amr: tuple[str, ...] = ()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token(family_id: str) -> str:
    return f"{family_id}.{secrets.token_urlsafe(32)}"


def family_of(token: str) -> str | None:
    """Return the family id a token names, or None when it is not a refresh token's shape."""
    family_id, dot, secret = token.partition(".")
    if not dot or not family_id or not secret or len(token) > 200:
        return None
    return family_id


class RefreshTokenStore:
    """Families of refresh tokens with rotation and reuse detection (lifetimes in seconds)."""

    def __init__(self, client: redis.asyncio.Redis, prefix: str, idle_lifetime: int,
                 absolute_lifetime: int, reuse_grace: float = 2.0):
        self._redis = client
        self._prefix = prefix
        self.idle_lifetime = idle_lifetime
        self.absolute_lifetime = absolute_lifetime
        self.reuse_grace = reuse_grace
        self._rotate = client.register_script(_ROTATE)
        self._revoke = client.register_script(_REVOKE)

    def _key(self, family_id: str) -> str:
        return f"{self._prefix}rtf:{{{family_id}}}"

    async def create(self, client_id: str, sub: str, scope: str, sid: str, auth_time: int,
                     amr: tuple[str, ...] = ()) -> tuple[str, Family]:
        """Start a family for a new grant; return its first token and the family.

        The absolute lifetime counts from `auth_time`, the sign-in, so refreshing
        never extends a session past it.
        """
        family_id = secrets.token_urlsafe(16)
        token = _new_token(family_id)
        now = int(time.time())
        absolute_expiry = auth_time + self.absolute_lifetime
        family = Family(family_id, client_id, sub, scope, sid, auth_time, absolute_expiry, amr)
        key = self._key(family_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={
                "client_id": client_id, "sub": sub, "scope": scope, "sid": sid,
                "auth_time": auth_time, "absolute_expiry": absolute_expiry, "amr": " ".join(amr),
                "current": _hash(token), "previous": "", "rotated_at": now * 1000, "revoked": "0",
            })
            pipe.expire(key, max(1, min(self.idle_lifetime, absolute_expiry - now)))
            await pipe.execute()
        return token, family

    async def rotate(self, token: str, client_id: str) -> tuple[Rotation, str | None, Family | None]:
        """Exchange `token` for the next one of its family.

        Returns (ROTATED, new token, family) on success. Every other outcome carries
        no token:

        * UNKNOWN: malformed, never issued, or expired;
        * REVOKED: the family was revoked earlier;
        * REUSED: an old token of the family, which is revoked now;
        * CONCURRENT: a parallel request rotated this token moments ago;
        * WRONG_CLIENT: the token belongs to another client, and nothing changes.
        """
        family_id = family_of(token)
        if family_id is None:
            return Rotation.UNKNOWN, None, None
        new_token = _new_token(family_id)
        result = await self._rotate(
            keys=[self._key(family_id)],
            args=[_hash(token), _hash(new_token), time.time_ns() // 1_000_000, self.idle_lifetime,
                  int(self.reuse_grace * 1000), client_id],
        )
        status = Rotation(int(result[0]))
        if status is not Rotation.ROTATED:
            return status, None, None
        fields = {result[i].decode(): result[i + 1].decode() for i in range(1, len(result), 2)}
        family = Family(family_id, fields["client_id"], fields["sub"], fields["scope"], fields["sid"],
                        int(fields["auth_time"]), int(fields["absolute_expiry"]), tuple(fields["amr"].split()))
        return status, new_token, family

    async def revoke_family(self, family_id: str) -> bool:
        """Revoke every token of the family; return False if it did not exist or expired."""
        return bool(await self._revoke(keys=[self._key(family_id)]))

    async def find(self, token: str) -> Family | None:
        """Return the family if `token` is its current, unrevoked token (for introspection)."""
        family_id = family_of(token)
        if family_id is None:
            return None
        fields = await self._redis.hgetall(self._key(family_id))
        if not fields:
            return None
        data = {key.decode(): value.decode() for key, value in fields.items()}
        if data["revoked"] == "1" or not secrets.compare_digest(data["current"], _hash(token)):
            return None
        if int(data["absolute_expiry"]) <= time.time():
            return None
        return Family(family_id, data["client_id"], data["sub"], data["scope"], data["sid"],
                      int(data["auth_time"]), int(data["absolute_expiry"]), tuple(data["amr"].split()))
