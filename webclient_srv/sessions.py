"""Server-side state in Redis: signed-in sessions, pending sign-ins and the refresh lock.

The browser holds only random cookie values. Redis keeps everything else under
the SHA-256 of those values, so a copy of Redis yields no usable cookie:

    <prefix>session:<hash>    the session (JSON): user, tokens, expiry; TTL = what
                              remains of the session's lifetime
    <prefix>signin:<hash>     pending sign-ins of one browser (a hash keyed by the
                              SHA-256 of each `state`); TTL = `pending_lifetime`
    <prefix>lock:<hash>       held while one request refreshes the session's tokens
    <prefix>by-sid:<hash>     the session hashes of one provider session (`sid`),
                              for back-channel logout; TTL = `lifetime`
    <prefix>by-sub:<hash>     the session hashes of one user (`sub`), likewise
    <prefix>logout-jti:<hash> a logout token already acted on; TTL = its maximum age

Values are encrypted with AES-GCM under a key derived (HKDF-SHA256) from the cookie
value itself, which only the browser holds. The application can read a session
only while serving a request that carries its cookie, and a copy of Redis yields
neither cookies nor the tokens, PKCE verifiers and nonces inside the values.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

COOKIE_VALUE_BYTES = 32

# A browser with more pending sign-ins than this starts over: an unfinished
# sign-in per open tab is normal, an unbounded number is not.
MAX_PENDING_SIGN_INS = 10

# Seconds between two attempts to take a lock another request holds.
LOCK_POLL_INTERVAL = 0.05

# Deletes the lock only if it still holds this request's token, so a request
# whose lock expired cannot release the next holder's.
_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def new_cookie_value() -> str:
    return secrets.token_urlsafe(COOKIE_VALUE_BYTES)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


_NONCE_BYTES = 12


def _cipher(cookie_value: str, purpose: bytes) -> AESGCM:
    """Return the AES-256-GCM cipher for values that belong to one cookie value."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"webclient_srv " + purpose).derive(cookie_value.encode("utf-8"))
    return AESGCM(key)


def seal(cookie_value: str, purpose: bytes, payload: dict[str, Any]) -> bytes:
    """Encrypt `payload` as JSON under the cookie value's key: nonce + ciphertext + tag."""
    nonce = os.urandom(_NONCE_BYTES)
    plaintext = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return nonce + _cipher(cookie_value, purpose).encrypt(nonce, plaintext, purpose)


def unseal(cookie_value: str, purpose: bytes, blob: bytes) -> dict[str, Any] | None:
    """Decrypt a value from `seal`; None when it was sealed for another cookie or altered."""
    try:
        plaintext = _cipher(cookie_value, purpose).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], purpose)
        return json.loads(plaintext)
    except (InvalidTag, ValueError):
        return None


@dataclass
class Session:
    """A signed-in user and the tokens the application uses on their behalf."""

    sub: str
    id_token: str
    # The validated claims of the ID token of the sign-in.
    id_claims: dict[str, Any]
    access_token: str
    # Unix seconds.
    access_token_expires_at: float
    refresh_token: str | None
    # Unix seconds of the sign-in; the session ends `lifetime` seconds later.
    created_at: float = field(default_factory=time.time)

    @property
    def name(self) -> str:
        return str(self.id_claims.get("name") or self.id_claims.get("preferred_username") or self.sub)

    @property
    def roles(self) -> tuple[str, ...]:
        role = self.id_claims.get("role")
        if isinstance(role, str):
            return (role,)
        if isinstance(role, list):
            return tuple(item for item in role if isinstance(item, str))
        return ()

    def expires_within(self, seconds: float) -> bool:
        return self.access_token_expires_at - time.time() <= seconds


@dataclass(frozen=True)
class PendingSignIn:
    """What a started sign-in must find again at its callback."""

    state: str
    nonce: str
    code_verifier: str
    # A local path (with query) to return to after the sign-in.
    return_url: str
    created_at: float


class SessionStore:
    """Sessions by cookie value; `lifetime` in seconds from sign-in."""

    def __init__(self, client: redis.asyncio.Redis, prefix: str, lifetime: int):
        self._redis = client
        self._prefix = prefix
        self.lifetime = lifetime

    def _key(self, cookie_value: str) -> str:
        return f"{self._prefix}session:{_digest(cookie_value)}"

    def _ttl(self, session: Session) -> int:
        return int(session.created_at + self.lifetime - time.time())

    def _sid_key(self, sid: str) -> str:
        return f"{self._prefix}by-sid:{_digest(sid)}"

    def _sub_key(self, sub: str) -> str:
        return f"{self._prefix}by-sub:{_digest(sub)}"

    async def create(self, session: Session) -> str:
        """Store a new session and return the cookie value that names it.

        The session is first added to the sets of its user (`sub`) and of its
        provider session (`sid`), which back-channel logout reads, and stored
        only then, so that a failed write cannot leave a session that no logout
        finds. Members are
        hashes, so the sets yield no cookie value. A member of a `sid` set also
        carries the hash of the session's `sub`, so that a logout token with
        that `sid` and another `sub` ends nothing.
        """
        # NOTE: a logout of this sid that runs between the index writes and the
        # SET below removes the entries and deletes nothing, and the session is
        # stored unindexed. It then ends at `lifetime`, or by a logout of its sub.
        cookie_value = new_cookie_value()
        digest = _digest(cookie_value)
        entries = [(self._sub_key(session.sub), digest)]
        sid = session.id_claims.get("sid")
        if isinstance(sid, str) and sid:
            entries.append((self._sid_key(sid), f"{digest}:{_digest(session.sub)}"))
        for key, member in entries:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(key, member)
                pipe.expire(key, self.lifetime)
                await pipe.execute()
        ttl = self._ttl(session)
        if ttl > 0:
            await self._redis.set(self._key(cookie_value), seal(cookie_value, b"session", asdict(session)), ex=ttl)
        return cookie_value

    async def end_for_logout(self, *, sid: str | None, sub: str | None) -> int:
        """Delete the sessions of a provider session, or with no `sid`, all of the user's.

        OpenID Connect Back-Channel Logout 1.0 §2.4: a logout token names `sid`,
        `sub` or both, and without `sid` every session of `sub` ends. With both,
        only sessions of that `sid` and that `sub` end. Returns the number of
        sessions deleted; sessions that already ended are not counted.
        """
        if sid:
            key = self._sid_key(sid)
        elif sub:
            key = self._sub_key(sub)
        else:
            return 0
        expected_sub = _digest(sub) if sub else None
        matched = []
        for member in await self._redis.smembers(key):
            text = member.decode("ascii") if isinstance(member, bytes) else member
            digest, _, sub_digest = text.partition(":")
            if not sid or expected_sub is None or sub_digest == expected_sub:
                matched.append((text, digest))
        ended = 0
        # One key at a time: on a Redis Cluster the sessions live in different slots.
        for _, digest in matched:
            ended += await self._redis.delete(f"{self._prefix}session:{digest}")
        # Only the members read above: a session indexed meanwhile keeps its entry.
        if matched:
            await self._redis.srem(key, *(text for text, _ in matched))
        return ended

    def _jti_key(self, jti: str) -> str:
        return f"{self._prefix}logout-jti:{_digest(jti)}"

    async def logout_token_used(self, jti: str) -> bool:
        """Return True when a logout token with this `jti` was acted on already."""
        return bool(await self._redis.exists(self._jti_key(jti)))

    async def record_logout_token(self, jti: str, seconds: int) -> None:
        """Remember for `seconds` that the logout token with this `jti` was acted on."""
        await self._redis.set(self._jti_key(jti), b"1", ex=max(1, seconds))

    async def save(self, cookie_value: str, session: Session) -> bool:
        """Write back a stored session; False (nothing written) when it ended or its lifetime is over.

        `SET XX` writes only a session that still exists, so a request that
        refreshed the tokens cannot bring back a session that a logout deleted
        in the meantime.
        """
        ttl = self._ttl(session)
        if ttl <= 0:
            await self.delete(cookie_value)
            return False
        sealed = seal(cookie_value, b"session", asdict(session))
        return bool(await self._redis.set(self._key(cookie_value), sealed, ex=ttl, xx=True))

    async def get(self, cookie_value: str) -> Session | None:
        """Return the live session for a cookie value, or None if it ended, expired or is unreadable."""
        raw = await self._redis.get(self._key(cookie_value))
        if raw is None:
            return None
        data = unseal(cookie_value, b"session", raw)
        try:
            return Session(**data) if data is not None else None
        except TypeError:
            return None

    async def delete(self, cookie_value: str) -> None:
        await self._redis.delete(self._key(cookie_value))

    @contextlib.asynccontextmanager
    async def refresh_lock(self, cookie_value: str, timeout: float) -> AsyncIterator[bool]:
        """Hold the session's refresh lock; yield False when it could not be taken within `timeout`.

        The lock expires by itself after `timeout` seconds, so a request that dies
        while holding it blocks the session for at most that long.
        """
        key = f"{self._prefix}lock:{_digest(cookie_value)}"
        token = secrets.token_hex(16)
        deadline = time.monotonic() + timeout
        acquired = False
        while True:
            acquired = bool(await self._redis.set(key, token, nx=True, px=int(timeout * 1000)))
            if acquired or time.monotonic() >= deadline:
                break
            await asyncio.sleep(LOCK_POLL_INTERVAL)
        try:
            yield acquired
        finally:
            if acquired:
                await self._redis.eval(_RELEASE_SCRIPT, 1, key, token)


class PendingSignInStore:
    """Started sign-ins by pre-session cookie value and `state`, each usable once."""

    def __init__(self, client: redis.asyncio.Redis, prefix: str, lifetime: int):
        self._redis = client
        self._prefix = prefix
        self.lifetime = lifetime

    def _key(self, cookie_value: str) -> str:
        return f"{self._prefix}signin:{_digest(cookie_value)}"

    async def add(self, cookie_value: str, pending: PendingSignIn) -> None:
        key = self._key(cookie_value)
        if await self._redis.hlen(key) >= MAX_PENDING_SIGN_INS:
            await self._redis.delete(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, _digest(pending.state), seal(cookie_value, b"signin", asdict(pending)))
            pipe.expire(key, self.lifetime)
            await pipe.execute()

    async def has_any(self, cookie_value: str) -> bool:
        return bool(await self._redis.exists(self._key(cookie_value)))

    async def take(self, cookie_value: str, state: str) -> PendingSignIn | None:
        """Remove and return the pending sign-in with this `state`.

        Returns None when there is none, when another request took it first (a
        replayed callback), or when it is older than the lifetime. Lookup by the
        hash of `state` means no secret is compared byte by byte.
        """
        key, name = self._key(cookie_value), _digest(state)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(key, name)
            pipe.hdel(key, name)
            raw, deleted = await pipe.execute()
        if raw is None or deleted != 1:
            return None
        data = unseal(cookie_value, b"signin", raw)
        if data is None:
            return None
        pending = PendingSignIn(**data)
        if time.time() - pending.created_at > self.lifetime:
            return None
        return pending
