"""Authorization codes in Redis: random, single-use, short-lived, consumed atomically.

A code is 256 random bits. Redis stores it only under the SHA-256 of its value:

    <prefix>code:{<hash>}          the pending grant as JSON, TTL = code lifetime
    <prefix>code-used:{<hash>}     the same grant after its first use, TTL = replay window
    <prefix>grant:{<id>}:tokens    "access <jti> <exp>" and "family <id>" entries
    <prefix>grant:{<id>}:revoked   set once a replay revoked the grant

The braces are Redis Cluster hash tags: every key a script touches together lands in
one slot. A code presented twice means it leaked, so the second use revokes every
token issued from the first (RFC 6749 §4.1.2, RFC 9700 §4.5).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from enum import Enum

import redis.asyncio

CODE_BYTES = 32

# KEYS[1] code key, KEYS[2] used-marker key; ARGV[1] seconds to keep the marker.
# Returns {1, grant} on first use, {2, grant} on a replay, {0, false} when unknown.
_CONSUME = """
local value = redis.call('GETDEL', KEYS[1])
if value then
  redis.call('SET', KEYS[2], value, 'EX', ARGV[1])
  return {1, value}
end
local used = redis.call('GET', KEYS[2])
if used then
  return {2, used}
end
return {0, false}
"""

# KEYS[1] tokens set, KEYS[2] revoked flag; ARGV[1] TTL, ARGV[2..] entries.
# Returns 1 when the grant was revoked meanwhile, so the caller must revoke too.
_REMEMBER = """
for i = 2, #ARGV do
  redis.call('SADD', KEYS[1], ARGV[i])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return redis.call('EXISTS', KEYS[2])
"""

# KEYS[1] tokens set, KEYS[2] revoked flag; ARGV[1] TTL. Returns the entries.
_REVOKE = """
redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
return redis.call('SMEMBERS', KEYS[1])
"""


@dataclass(frozen=True)
class CodeGrant:
    """The grant a code stands for; the token endpoint checks each field against the request."""

    grant_id: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: str
    sub: str
    sid: str
    auth_time: int
    amr: tuple[str, ...]
    nonce: str | None = None
    # The user's username and claims when the code was issued, so that redeeming
    # the code needs no MongoDB read: a store outage then cannot strand a code
    # that was already spent.
    username: str = ""
    user_claims: dict = field(default_factory=dict)


class Redemption(Enum):
    FIRST_USE = 1
    REPLAY = 2
    UNKNOWN = 0


@dataclass(frozen=True)
class IssuedTokens:
    """Tokens issued from one grant: access token ids with their expiry, refresh families."""

    access: tuple[tuple[str, int], ...]
    families: tuple[str, ...]


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class CodeStore:
    """Authorization codes and the tokens issued from them.

    `lifetime` is how long a code can be redeemed, in seconds (60 by default).
    `replay_window` is how long a used code is remembered, so that a replay is
    detected and its tokens revoked. It should cover the access token lifetime.
    """

    def __init__(self, client: redis.asyncio.Redis, prefix: str, lifetime: int = 60,
                 replay_window: int = 3600):
        self._redis = client
        self._prefix = prefix
        self.lifetime = lifetime
        self.replay_window = replay_window
        self._consume = client.register_script(_CONSUME)
        self._remember = client.register_script(_REMEMBER)
        self._revoke = client.register_script(_REVOKE)

    def _code_keys(self, code: str) -> list[str]:
        tag = _hash(code)
        return [f"{self._prefix}code:{{{tag}}}", f"{self._prefix}code-used:{{{tag}}}"]

    def _grant_keys(self, grant_id: str) -> list[str]:
        return [f"{self._prefix}grant:{{{grant_id}}}:tokens", f"{self._prefix}grant:{{{grant_id}}}:revoked"]

    async def issue(self, grant: CodeGrant) -> str:
        """Store `grant` under a new code and return the code."""
        code = secrets.token_urlsafe(CODE_BYTES)
        payload = json.dumps(asdict(grant), separators=(",", ":"))
        await self._redis.set(self._code_keys(code)[0], payload, ex=self.lifetime, nx=True)
        return code

    async def consume(self, code: str) -> tuple[Redemption, CodeGrant | None]:
        """Redeem `code` once.

        Returns (FIRST_USE, grant) the first time, (REPLAY, grant) for a code that
        was already redeemed within the replay window, and (UNKNOWN, None) for a
        code that never existed or has expired. The code is deleted before the
        caller compares anything, so two concurrent redemptions cannot both win.
        """
        status, payload = await self._consume(keys=self._code_keys(code), args=[self.replay_window])
        if status == 0:
            return Redemption.UNKNOWN, None
        data = json.loads(payload)
        data["amr"] = tuple(data["amr"])
        return Redemption(status), CodeGrant(**data)

    async def remember_tokens(self, grant_id: str, access: list[tuple[str, int]],
                              families: list[str]) -> bool:
        """Record tokens issued from a grant; return False if a replay already revoked it.

        On False the caller must revoke what it just issued: the replay arrived
        between the redemption and this call.
        """
        entries = [f"access {jti} {exp}" for jti, exp in access] + [f"family {family}" for family in families]
        revoked = await self._remember(keys=self._grant_keys(grant_id), args=[self.replay_window, *entries])
        return not revoked

    async def revoke_grant(self, grant_id: str) -> IssuedTokens:
        """Mark the grant revoked and return every token issued from it, for the caller to revoke."""
        members = await self._revoke(keys=self._grant_keys(grant_id), args=[self.replay_window])
        access: list[tuple[str, int]] = []
        families: list[str] = []
        for member in members:
            kind, *fields = member.decode("ascii").split(" ")
            if kind == "access":
                access.append((fields[0], int(fields[1])))
            elif kind == "family":
                families.append(fields[0])
        return IssuedTokens(access=tuple(access), families=tuple(families))
