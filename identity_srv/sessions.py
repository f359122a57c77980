"""Sign-in sessions of the provider, kept in Redis.

The browser holds only a random session id in a cookie. Redis keeps the session
under the SHA-256 of that id, so a copy of Redis yields no usable cookie:

    <prefix>session:{<hash>}      sub, sid, auth_time, amr, remember
    <prefix>sid:{<sid>}           the hash above, to end a session by its sid
    <prefix>sid:{<sid>}:clients   client ids signed in through the session
    <prefix>sid:{<sid>}:families  refresh token families issued in it

`sid` is a second random value that goes into ID tokens and logout tokens. It
cannot open the session, so it is safe to show to clients. A session lasts
`lifetime` seconds from sign-in, or `remember_lifetime` when the user ticked
"remember me". Every sign-in creates a new session id, so an id fixed by an
attacker before sign-in is worthless after it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import redis.asyncio

SESSION_ID_BYTES = 32


@dataclass(frozen=True)
class Session:
    sub: str
    sid: str
    auth_time: int
    amr: tuple[str, ...]
    remember: bool
    clients: frozenset[str] = frozenset()
    families: frozenset[str] = frozenset()


class SessionStore:
    """Sessions by cookie value; lifetimes in seconds."""

    def __init__(self, client: redis.asyncio.Redis, prefix: str, lifetime: int, remember_lifetime: int):
        self._redis = client
        self._prefix = prefix
        self.lifetime = lifetime
        self.remember_lifetime = remember_lifetime

    def _session_key(self, session_id: str) -> str:
        digest = hashlib.sha256(session_id.encode("utf-8")).hexdigest()
        return f"{self._prefix}session:{{{digest}}}"

    def _sid_keys(self, sid: str) -> tuple[str, str, str]:
        base = f"{self._prefix}sid:{{{sid}}}"
        return base, f"{base}:clients", f"{base}:families"

    async def create(self, sub: str, amr: tuple[str, ...], remember: bool) -> tuple[str, Session]:
        """Start a session for `sub`; return the cookie value and the session."""
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        session = Session(sub=sub, sid=secrets.token_urlsafe(16), auth_time=int(time.time()),
                          amr=amr, remember=remember)
        ttl = self.remember_lifetime if remember else self.lifetime
        key = self._session_key(session_id)
        sid_key, _, _ = self._sid_keys(session.sid)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping={"sub": sub, "sid": session.sid, "auth_time": session.auth_time,
                                    "amr": " ".join(amr), "remember": int(remember)})
            pipe.expire(key, ttl)
            pipe.set(sid_key, key, ex=ttl)
            await pipe.execute()
        return session_id, session

    async def _load(self, key: str) -> Session | None:
        fields = await self._redis.hgetall(key)
        if not fields:
            return None
        data = {name.decode(): value.decode() for name, value in fields.items()}
        _, clients_key, families_key = self._sid_keys(data["sid"])
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.smembers(clients_key)
            pipe.smembers(families_key)
            clients, families = await pipe.execute()
        return Session(
            sub=data["sub"], sid=data["sid"], auth_time=int(data["auth_time"]),
            amr=tuple(data["amr"].split()), remember=data["remember"] == "1",
            clients=frozenset(item.decode() for item in clients),
            families=frozenset(item.decode() for item in families),
        )

    async def get(self, session_id: str) -> Session | None:
        """Return the live session for a cookie value, or None if it ended or expired."""
        return await self._load(self._session_key(session_id))

    async def _add(self, sid: str, index: int, value: str) -> bool:
        keys = self._sid_keys(sid)
        ttl = await self._redis.ttl(keys[0])
        if ttl <= 0:
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(keys[index], value)
            pipe.expire(keys[index], ttl)
            await pipe.execute()
        return True

    async def add_client(self, sid: str, client_id: str) -> bool:
        """Record that `client_id` signed in through session `sid`; False if it is gone."""
        return await self._add(sid, 1, client_id)

    async def add_family(self, sid: str, family_id: str) -> bool:
        """Record a refresh token family issued in session `sid`, for logout to revoke."""
        return await self._add(sid, 2, family_id)

    async def _end(self, key: str) -> Session | None:
        session = await self._load(key)
        if session is None:
            return None
        await self._redis.delete(key, *self._sid_keys(session.sid))
        return session

    async def end(self, session_id: str) -> Session | None:
        """Delete the session of a cookie value and return it, for the caller to revoke its tokens."""
        return await self._end(self._session_key(session_id))

    async def end_by_sid(self, sid: str) -> Session | None:
        """Delete the session with this `sid` (from an ID token) and return it."""
        key = await self._redis.get(self._sid_keys(sid)[0])
        if key is None:
            return None
        return await self._end(key.decode())
