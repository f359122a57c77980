"""Load the whole stack from many concurrent clients, then check that nothing was lost.

    python bench/load_stack.py [--seconds 30] [--browsers 8] [--machines 4] [--revokers 2]

Starts a private redis-server and SecantusDB, seeds the demo users and movies, and
starts identity_srv, movies_srv, gateway_srv and webclient_srv on free 127.0.0.1
ports (the gateway with its rate limits raised, since every client shares one
address). Then, from one asyncio process (aiohttp), for `--seconds`:

* browsers: sign in with the code flow and PKCE, then loop: refresh the token
  (rotation), create a movie with a unique title through the gateway, read it,
  update it with If-Match, and load the webclient's home page;
* machines: get a client_credentials token, then list movies through the gateway;
* revokers: sign in, revoke the refresh token at once, and record it as revoked.

It prints requests served and errors by status for each operation, then checks
the stores. Every movie whose create returned 201 must be in MongoDB exactly once
(by its unique title), and no other title of this run may appear. Through
introspection, the last refresh token of each browser must be active and every
revoked or rotated one inactive. It exits 1 when any check fails or any request got a 5xx.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from servicekit.embedded import free_port, redis_server, secantus_server
from tests.support.processes import ServiceProcess

MOVIES_DATABASE = "movies_load"
BASIC_WEB = {"Authorization": "Basic " + base64.b64encode(b"movies_mvc_client:secret").decode("ascii")}
BASIC_MACHINE = {"Authorization": "Basic " + base64.b64encode(b"movieClient:secret").decode("ascii")}
SCOPE = "openid profile movieAPI offline_access"
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


class RequestFailed(Exception):
    def __init__(self, operation: str, status: int):
        super().__init__(f"{operation} returned HTTP {status}")


@dataclass
class Ledger:
    """The record of a load run: statuses per operation, created titles, refresh tokens by fate."""

    statuses: Counter = field(default_factory=Counter)
    created: list[str] = field(default_factory=list)
    attempted: list[str] = field(default_factory=list)
    current_tokens: dict[int, str] = field(default_factory=dict)
    rotated_tokens: list[str] = field(default_factory=list)
    revoked_tokens: list[str] = field(default_factory=list)
    client_errors: Counter = field(default_factory=Counter)

    def record(self, operation: str, status: int) -> None:
        self.statuses[(operation, status)] += 1


@dataclass
class Stack:
    identity: ServiceProcess
    movies: ServiceProcess
    gateway: ServiceProcess
    webclient: ServiceProcess
    redirect_uri: str


async def call(session: aiohttp.ClientSession, ledger: Ledger, operation: str, method: str, url: str,
               expected: tuple[int, ...], **kwargs) -> tuple[int, Mapping[str, str], str]:
    async with session.request(method, url, allow_redirects=False, **kwargs) as response:
        text = await response.text()
        ledger.record(operation, response.status)
        if response.status not in expected:
            raise RequestFailed(operation, response.status)
        return response.status, response.headers.copy(), text


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def sign_in(session: aiohttp.ClientSession, ledger: Ledger, stack: Stack, user: str) -> dict:
    """Run the code flow as `user` in a fresh cookie jar and return the token response."""
    session.cookie_jar.clear()
    issuer = stack.identity.url
    verifier, challenge = pkce_pair()
    params = {"client_id": "movies_mvc_client", "redirect_uri": stack.redirect_uri, "response_type": "code",
              "scope": SCOPE, "state": secrets.token_urlsafe(8), "code_challenge": challenge,
              "code_challenge_method": "S256"}
    _, headers, _ = await call(session, ledger, "authorize", "GET", f"{issuer}/connect/authorize", (302,),
                               params=params)
    _, _, page = await call(session, ledger, "login page", "GET", urljoin(issuer, headers["Location"]), (200,))
    form = {**dict(_HIDDEN.findall(page)), "username": user, "password": user, "action": "login"}
    _, headers, _ = await call(session, ledger, "login", "POST", f"{issuer}/account/login", (302,), data=form)
    _, headers, _ = await call(session, ledger, "resume", "GET", urljoin(issuer, headers["Location"]), (302,))
    code = parse_qs(urlsplit(headers["Location"]).query)["code"][0]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": stack.redirect_uri,
            "code_verifier": verifier}
    _, _, body = await call(session, ledger, "code exchange", "POST", f"{issuer}/connect/token", (200,),
                            data=data, headers=BASIC_WEB)
    return json_loads(body)


def json_loads(text: str) -> dict:
    return json.loads(text)


async def browser(index: int, stack: Stack, ledger: Ledger, deadline: float) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        while index not in ledger.current_tokens and time.monotonic() < deadline:
            try:
                ledger.current_tokens[index] = (await sign_in(session, ledger, stack, "alice"))["refresh_token"]
            except RequestFailed as exc:
                ledger.client_errors[str(exc)] += 1
        while time.monotonic() < deadline:
            try:
                data = {"grant_type": "refresh_token", "refresh_token": ledger.current_tokens[index]}
                _, _, body = await call(session, ledger, "refresh", "POST", f"{stack.identity.url}/connect/token",
                                        (200,), data=data, headers=BASIC_WEB)
                rotated = json_loads(body)
                ledger.rotated_tokens.append(ledger.current_tokens[index])
                ledger.current_tokens[index] = rotated["refresh_token"]
                bearer = {"Authorization": f"Bearer {rotated['access_token']}"}

                title = f"load {uuid.uuid4().hex}"
                ledger.attempted.append(title)
                movie = {"title": title, "genre": "Load", "rating": 5, "releaseDate": "2000-01-01"}
                _, headers, body = await call(session, ledger, "create movie", "POST", f"{stack.gateway.url}/movies",
                                              (201,), json=movie, headers=bearer)
                ledger.created.append(title)
                movie_id = json_loads(body)["id"]
                url = f"{stack.gateway.url}/movies/{movie_id}"
                _, headers, _ = await call(session, ledger, "read movie", "GET", url, (200,), headers=bearer)
                await call(session, ledger, "update movie", "PUT", url, (200,),
                           json={**movie, "rating": 6}, headers={**bearer, "If-Match": headers["ETag"]})
                await call(session, ledger, "webclient page", "GET", f"{stack.webclient.url}/", (200,))
            except RequestFailed as exc:
                ledger.client_errors[str(exc)] += 1


async def machine(stack: Stack, ledger: Ledger, deadline: float) -> None:
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                _, _, body = await call(session, ledger, "client_credentials", "POST",
                                        f"{stack.identity.url}/connect/token", (200,),
                                        data={"grant_type": "client_credentials"}, headers=BASIC_MACHINE)
                bearer = {"Authorization": f"Bearer {json_loads(body)['access_token']}"}
                for _ in range(5):
                    await call(session, ledger, "list movies", "GET", f"{stack.gateway.url}/movies", (200,),
                               headers=bearer)
            except RequestFailed as exc:
                ledger.client_errors[str(exc)] += 1


async def revoker(stack: Stack, ledger: Ledger, deadline: float) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        while time.monotonic() < deadline:
            try:
                tokens = await sign_in(session, ledger, stack, "bob")
                await call(session, ledger, "revoke", "POST", f"{stack.identity.url}/connect/revocation", (200,),
                           data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
                           headers=BASIC_WEB)
                ledger.revoked_tokens.append(tokens["refresh_token"])
            except RequestFailed as exc:
                ledger.client_errors[str(exc)] += 1


async def run_load(stack: Stack, args: argparse.Namespace, ledger: Ledger) -> float:
    deadline = time.monotonic() + args.seconds
    started = time.monotonic()
    await asyncio.gather(
        *(browser(index, stack, ledger, deadline) for index in range(args.browsers)),
        *(machine(stack, ledger, deadline) for _ in range(args.machines)),
        *(revoker(stack, ledger, deadline) for _ in range(args.revokers)),
    )
    return time.monotonic() - started


async def introspect_all(stack: Stack, tokens: list[str]) -> list[bool]:
    results = []
    async with aiohttp.ClientSession() as session:
        for token in tokens:
            async with session.post(f"{stack.identity.url}/connect/introspect", data={"token": token},
                                    headers=BASIC_MACHINE) as response:
                results.append((await response.json())["active"])
    return results


def check_stores(stack: Stack, mongo_url: str, ledger: Ledger) -> list[str]:
    """Return one line per failed check of the stores against the ledger."""
    failures = []
    client = MongoClient(mongo_url, serverSelectionTimeoutMS=10_000)
    try:
        collection = client[MOVIES_DATABASE]["movies"]
        stored = Counter(document["title"] for document in collection.find({"genre": "Load"}, {"title": 1}))
    finally:
        client.close()
    for title in ledger.created:
        if stored[title] != 1:
            failures.append(f"movie {title!r} is stored {stored[title]} times, expected once")
    unknown = set(stored) - set(ledger.attempted)
    if unknown:
        failures.append(f"{len(unknown)} stored load movies were never requested")
    uncertain = set(ledger.attempted) - set(ledger.created)
    for title in uncertain:
        if stored[title] > 1:
            failures.append(f"movie {title!r} whose create failed is stored {stored[title]} times")

    current = list(ledger.current_tokens.values())
    active = asyncio.run(introspect_all(stack, current))
    failures += [f"a browser's current refresh token is inactive ({index})" for index, ok in enumerate(active)
                 if not ok]
    retired = ledger.revoked_tokens + ledger.rotated_tokens
    inactive = asyncio.run(introspect_all(stack, retired))
    failures += [f"a revoked or rotated refresh token is still active ({index})"
                 for index, ok in enumerate(inactive) if ok]
    return failures


def report(ledger: Ledger, seconds: float) -> int:
    """Print requests served and errors by status; return the number of 5xx responses."""
    by_operation: dict[str, Counter] = {}
    for (operation, status), count in ledger.statuses.items():
        by_operation.setdefault(operation, Counter())[status] += count
    total = sum(ledger.statuses.values())
    print(f"requests served: {total} in {seconds:.1f} s ({total / seconds:.1f} /s)")
    print(f"{'operation':<20} {'requests':>9}  statuses")
    for operation in sorted(by_operation):
        counts = by_operation[operation]
        listed = ", ".join(f"{status}: {count}" for status, count in sorted(counts.items()))
        print(f"{operation:<20} {sum(counts.values()):>9}  {listed}")
    errors = Counter()
    for (_, status), count in ledger.statuses.items():
        if status >= 400:
            errors[status] += count
    print("errors by status: " + (", ".join(f"{s}: {c}" for s, c in sorted(errors.items())) or "none"))
    for message, count in ledger.client_errors.most_common():
        print(f"  {count} x {message}")
    return sum(count for status, count in errors.items() if status >= 500)


def raised_rate_limits(folder: Path) -> Path:
    text = (ROOT / "conf" / "routes.toml").read_text()
    text = re.sub(r"(per_client|per_user|per_address) = \d+", r"\1 = 1000000", text)
    path = folder / "routes.toml"
    path.write_text(text)
    return path


def start_stack(work: Path, env: dict[str, str], log_level: str) -> tuple[Stack, list[ServiceProcess]]:
    webclient_port = free_port()
    clients = (ROOT / "conf" / "clients.toml").read_text().replace("http://localhost:5002/",
                                                                    f"http://localhost:{webclient_port}/")
    (work / "clients.toml").write_text(clients)
    identity = ServiceProcess("identity_srv", {}, work / "identity.log")
    base = {**env, "ISSUER": identity.url, "LOG_LEVEL": log_level}
    identity.env.update({**base, "IDENTITY__CLIENTS__FILE": str(work / "clients.toml")})
    subprocess.run([sys.executable, "scripts/seed_users.py"], cwd=ROOT, env={**os.environ, **identity.env},
                   check=True, capture_output=True)
    started = [identity.start()]
    movies = ServiceProcess("movies_srv", {**base, "MOVIES__MONGO__DATABASE": MOVIES_DATABASE},
                            work / "movies.log").start()
    started.append(movies)
    gateway = ServiceProcess("gateway_srv", {**base, "GATEWAY_MOVIES_URL": movies.url,
                                             "GATEWAY__ROUTES__FILE": str(raised_rate_limits(work))},
                             work / "gateway.log").start()
    started.append(gateway)
    webclient = ServiceProcess("webclient_srv", {**base, "WEBCLIENT__GATEWAY__URL": gateway.url,
                                                 "WEBCLIENT__OIDC__PUBLIC_URL": f"http://localhost:{webclient_port}"},
                               work / "webclient.log", port=webclient_port).start()
    started.append(webclient)
    return Stack(identity, movies, gateway, webclient, f"http://localhost:{webclient_port}/signin-oidc"), started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of load (default 30)")
    parser.add_argument("--browsers", type=int, default=8, help="concurrent signed-in browsers (default 8)")
    parser.add_argument("--machines", type=int, default=4, help="concurrent machine clients (default 4)")
    parser.add_argument("--revokers", type=int, default=2, help="concurrent sign-in-and-revoke clients (default 2)")
    parser.add_argument("--log-level", default="warning", help="LOG_LEVEL of the services (default warning)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="load-stack-"))
    redis = redis_server(free_port(), work / "redis", persistent=False)
    mongo = secantus_server(free_port(), work / "secantusdb")
    started: list[ServiceProcess] = []
    try:
        redis.start()
        mongo.start(timeout=60)
        stack, started = start_stack(work, {"REDIS_URL": redis.url, "MONGO_URL": mongo.url},
                                     args.log_level)
        print(f"load: {args.browsers} browsers, {args.machines} machine clients, {args.revokers} revokers "
              f"for {args.seconds:g} s; aiohttp in one process; {os.cpu_count()} cores shared with the stack")
        ledger = Ledger()
        elapsed = asyncio.run(run_load(stack, args, ledger))
        server_errors = report(ledger, elapsed)
        failures = check_stores(stack, mongo.url, ledger)
        print(f"movies created: {len(ledger.created)}, each stored exactly once: "
              f"{'yes' if not any('stored' in f for f in failures) else 'NO'}")
        print(f"refresh tokens: {len(ledger.current_tokens)} current (active), {len(ledger.rotated_tokens)} rotated "
              f"and {len(ledger.revoked_tokens)} revoked (inactive)")
        for failure in failures:
            print(f"FAILED: {failure}")
        print(f"5xx responses: {server_errors}; store check failures: {len(failures)}")
    finally:
        for service in reversed(started):
            started_stop = time.monotonic()
            service.stop()
            print(f"{service.package} stopped in {time.monotonic() - started_stop:.1f} s after SIGTERM")
        mongo.stop()
        redis.stop()
    sys.exit(1 if server_errors or failures else 0)


if __name__ == "__main__":
    main()
