"""Fixtures for webclient_srv tests.

Two stacks:

* `page_stack`: webclient_srv, gateway_srv and movies_srv processes that trust
  the test issuer (`tests.support.test_issuer`), so a signed-in session can be
  written straight into Redis with tokens the test signs. The issuer's discovery
  names authorization, UserInfo and end-session endpoints that the sign-in
  redirects to but that the tests never call.
* `full_stack` (in test_browser.py): the real identity_srv as well, for the
  sign-in in a browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync
import redis.asyncio

from servicekit.embedded import free_port
from tests.support.processes import ServiceProcess
from tests.support.test_issuer import BROWSER_CLIENT, TestIssuer
from webclient_srv.sessions import Session, SessionStore, unseal

MOVIES_DATABASE = "movies_webclient_test"
ALICE = "818727"
BOB = "88421113"
SESSION_COOKIE = "webclient_session"
KEY_PREFIX = "web:"


def start_webclient(env: dict[str, str], log_path: Path, port: int | None = None) -> ServiceProcess:
    service = ServiceProcess("webclient_srv", env, log_path, port=port or free_port())
    service.env.setdefault("WEBCLIENT__OIDC__PUBLIC_URL", f"http://localhost:{service.port}")
    return service.start()


def start_webclient_without_redis(stack: "PageStack", log_path: Path) -> ServiceProcess:
    """Start a webclient whose Redis URL names a closed port, with short Redis timeouts."""
    env = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "ISSUER": stack.issuer.url,
           "WEBCLIENT__REDIS__CONNECT_TIMEOUT": "0.2", "WEBCLIENT__REDIS__COMMAND_TIMEOUT": "0.2",
           "WEBCLIENT__GATEWAY__URL": stack.gateway.url}
    return start_webclient(env, log_path)


@dataclass
class PageStack:
    issuer: TestIssuer
    webclient: ServiceProcess
    gateway: ServiceProcess
    movies: ServiceProcess
    redis_url: str

    @property
    def public_url(self) -> str:
        return f"http://localhost:{self.webclient.port}"

    def id_claims(self, sub: str, roles: list[str], **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.issuer.url, "sub": sub, "aud": BROWSER_CLIENT, "iat": now, "exp": now + 300,
                  "nonce": "n", "sid": "s", "name": {ALICE: "Alice Smith", BOB: "Bob Smith"}.get(sub, sub),
                  "role": roles}
        claims.update(extra)
        return claims

    def access_token(self, sub: str, roles: list[str], lifetime: int = 300) -> str:
        claims = self.issuer.user_claims(sub, roles=roles, lifetime=lifetime)
        claims["name"] = self.id_claims(sub, roles)["name"]
        return self.issuer.sign(claims)

    def sign_in(self, sub: str, roles: list[str], *, lifetime: int = 300,
                refresh_token: str | None = None, sid: str = "s") -> str:
        """Write a signed-in session into Redis and return its cookie value."""
        claims = self.id_claims(sub, roles, sid=sid)
        session = Session(sub=sub, id_token=self.issuer.sign(claims, header={"typ": "JWT"}), id_claims=claims,
                          access_token=self.access_token(sub, roles, lifetime),
                          access_token_expires_at=time.time() + lifetime, refresh_token=refresh_token)
        return run(self._create(session))

    async def _create(self, session: Session) -> str:
        async with self._store() as store:
            return await store.create(session)

    @contextlib.asynccontextmanager
    async def _store(self):
        client = redis.asyncio.Redis.from_url(self.redis_url)
        try:
            yield SessionStore(client, KEY_PREFIX, 3600)
        finally:
            await client.aclose()

    def session_exists(self, cookie_value: str) -> bool:
        async def read() -> bool:
            async with self._store() as store:
                return await store.get(cookie_value) is not None
        return run(read())

    def replace_access_token(self, cookie_value: str, access_token: str) -> None:
        async def write() -> None:
            async with self._store() as store:
                session = await store.get(cookie_value)
                session.access_token = access_token
                await store.save(cookie_value, session)
        run(write())

    def pending_return_urls(self, browser_cookie: str) -> list[str]:
        """Return the return URLs of the pending sign-ins of a browser."""
        client = redis_sync.Redis.from_url(self.redis_url)
        digest = hashlib.sha256(browser_cookie.encode()).hexdigest()
        try:
            return [unseal(browser_cookie, b"signin", raw)["return_url"]
                    for raw in client.hvals(f"{KEY_PREFIX}signin:{digest}")]
        finally:
            client.close()


def run(coroutine):
    return asyncio.new_event_loop().run_until_complete(coroutine)


@pytest.fixture(scope="module")
def page_stack(redis_proc, mongo_proc, tmp_path_factory):
    folder = tmp_path_factory.mktemp("webclient")
    issuer = TestIssuer()
    issuer.discovery_extra.update({
        "authorization_endpoint": f"{issuer.url}/connect/authorize",
        "userinfo_endpoint": f"{issuer.url}/connect/userinfo",
        "end_session_endpoint": f"{issuer.url}/connect/endsession",
    })
    issuer.start()
    base = {"REDIS_URL": redis_proc.url, "MONGO_URL": mongo_proc.url, "ISSUER": issuer.url, "LOG_LEVEL": "info"}
    started: list[ServiceProcess] = []
    try:
        movies = ServiceProcess("movies_srv", {**base, "MOVIES__MONGO__DATABASE": MOVIES_DATABASE},
                                folder / "movies.log").start()
        started.append(movies)
        gateway = ServiceProcess("gateway_srv", {**base, "GATEWAY_MOVIES_URL": movies.url},
                                 folder / "gateway.log").start()
        started.append(gateway)
        webclient = start_webclient({**base, "WEBCLIENT__GATEWAY__URL": gateway.url}, folder / "webclient.log")
        started.append(webclient)
        yield PageStack(issuer, webclient, gateway, movies, redis_proc.url)
    finally:
        for service in reversed(started):
            service.stop()
        issuer.stop()
