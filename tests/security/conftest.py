"""The whole stack as real processes for the attack suite, and its per-family summary.

`stack` starts identity_srv (seeded users, two extra clients), movies_srv,
gateway_srv and webclient_srv once for the whole `tests/security` package,
against the session stores in their own databases. Cases send what an attacker
would send and check the status, error code and headers the RFCs require.

`pytest_terminal_summary` prints each threat family (one module each) with its
case count and how many passed, so `make test` output shows the threat model.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests

from servicekit.embedded import free_port
from tests.signin.conftest import (
    LogoutReceiver,
    extra_clients,
    hidden_fields,
    pkce_pair,
    query_of,
    seed_users,
)
from tests.support.loopback import LoopbackServer
from tests.support.processes import ROOT, ServiceProcess

IDENTITY_DATABASE = "identity_security"
MOVIES_DATABASE = "movies_security"
BROWSER_CLIENT = "movies_mvc_client"
MACHINE_CLIENT = "movieClient"
DEMO_SECRET = "secret"
SCOPE = "openid profile email address roles movieAPI offline_access"
# A second confidential client (secret "secret") and a public client, both from
# tests/signin/conftest.py: the attacker's own clients.
OTHER_CLIENT = "consent_client"
OTHER_REDIRECT = "http://127.0.0.1:9/cb"
PUBLIC_CLIENT = "spa_client"
PUBLIC_REDIRECT = "http://127.0.0.1:9/spa"


@dataclass
class Stack:
    identity: ServiceProcess
    movies: ServiceProcess
    gateway: ServiceProcess
    webclient: ServiceProcess
    redis_url: str
    mongo_url: str

    @property
    def issuer(self) -> str:
        return self.identity.url

    @property
    def webclient_url(self) -> str:
        return f"http://localhost:{self.webclient.port}"

    @property
    def redirect_uri(self) -> str:
        return f"{self.webclient_url}/signin-oidc"

    @property
    def logout_redirect_uri(self) -> str:
        return f"{self.webclient_url}/signout-callback-oidc"

    def services(self) -> list[ServiceProcess]:
        return [self.identity, self.movies, self.gateway, self.webclient]


def write_clients_file(folder: Path, webclient_port: int, backchannel_url: str) -> Path:
    text = (ROOT / "conf" / "clients.toml").read_text()
    text = text.replace("http://localhost:5002/", f"http://localhost:{webclient_port}/")
    path = folder / "clients.toml"
    path.write_text(text + extra_clients(backchannel_url))
    return path


@contextlib.contextmanager
def running_stack(folder: Path, redis_url: str, mongo_url: str, databases: tuple[str, str],
                  mongo_timeout: str | None = None) -> Iterator[Stack]:
    """Seed the users, start the four services against the given stores, and stop them on exit.

    `databases` names the identity and movies databases. `mongo_timeout` sets both
    services' MongoDB server selection timeout in seconds, so an outage turns into
    a 503 quickly.
    """
    identity_database, movies_database = databases
    receiver = LogoutReceiver()
    webclient_port = free_port()
    identity = ServiceProcess("identity_srv", {}, folder / "identity.log")
    base = {"REDIS_URL": redis_url, "MONGO_URL": mongo_url, "ISSUER": identity.url, "LOG_LEVEL": "info"}
    identity.env.update({**base, "IDENTITY__MONGO__DATABASE": identity_database,
                         "IDENTITY__CLIENTS__FILE": str(write_clients_file(folder, webclient_port, receiver.url))})
    movies_env = {**base, "MOVIES__MONGO__DATABASE": movies_database}
    if mongo_timeout is not None:
        identity.env["IDENTITY__MONGO__SERVER_SELECTION_TIMEOUT"] = mongo_timeout
        movies_env["MOVIES__MONGO__SERVER_SELECTION_TIMEOUT"] = mongo_timeout
    seed_users({**os.environ, **identity.env, "PATH": "/usr/bin:/bin"})
    started: list[ServiceProcess] = []
    try:
        started.append(identity.start())
        movies = ServiceProcess("movies_srv", movies_env, folder / "movies.log").start()
        started.append(movies)
        gateway = ServiceProcess("gateway_srv", {**base, "GATEWAY_MOVIES_URL": movies.url},
                                 folder / "gateway.log").start()
        started.append(gateway)
        webclient = ServiceProcess("webclient_srv", {**base, "WEBCLIENT__GATEWAY__URL": gateway.url,
                                                     "WEBCLIENT__OIDC__PUBLIC_URL": f"http://localhost:{webclient_port}"},
                                   folder / "webclient.log", port=webclient_port).start()
        started.append(webclient)
        yield Stack(identity, movies, gateway, webclient, redis_url, mongo_url)
    finally:
        for service in reversed(started):
            service.stop()
        receiver.stop()


@pytest.fixture(scope="package")
def stack(redis_proc, mongo_proc, tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("security"), redis_proc.url, mongo_proc.url,
                       (IDENTITY_DATABASE, MOVIES_DATABASE)) as running:
        yield running


class Attacker:
    """A cookie-keeping HTTP client that never follows redirects on its own."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.http = requests.Session()

    def get(self, url: str, **params) -> requests.Response:
        return self.http.get(url, params=params or None, allow_redirects=False, timeout=15)

    def post(self, url: str, data=None, **kwargs) -> requests.Response:
        return self.http.post(url, data=data, allow_redirects=False, timeout=15, **kwargs)

    def authorize(self, client_id: str = BROWSER_CLIENT, redirect_uri: str | None = None, scope: str = SCOPE,
                  challenge: str | None = None, **extra) -> requests.Response:
        params = {"client_id": client_id, "redirect_uri": self.stack.redirect_uri if redirect_uri is None else redirect_uri,
                  "response_type": "code", "scope": scope, "state": "state-123", "nonce": "nonce-456",
                  "code_challenge": challenge or pkce_pair()[1], "code_challenge_method": "S256", **extra}
        return self.get(f"{self.stack.issuer}/connect/authorize",
                        **{name: value for name, value in params.items() if value is not None})

    def follow(self, response: requests.Response) -> requests.Response:
        assert response.status_code in (302, 303), f"expected a redirect, got {response.status_code}"
        return self.get(requests.compat.urljoin(response.url, response.headers["Location"]))

    def submit(self, page: requests.Response, **fields) -> requests.Response:
        action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
        return self.post(requests.compat.urljoin(page.url, action), data={**hidden_fields(page.text), **fields})

    def sign_in(self, username: str = "alice", password: str = "alice", **authorize) -> requests.Response:
        """Authorize, sign in on the login page, and return the redirect back to the client."""
        login_page = self.follow(self.authorize(**authorize))
        return self.follow(self.submit(login_page, username=username, password=password, action="login"))

    def code(self, **authorize) -> tuple[str, str]:
        """Sign in as alice and return (code, verifier)."""
        verifier, challenge = pkce_pair()
        back = self.sign_in(challenge=challenge, **authorize)
        assert back.status_code == 302, back.text[:300]
        return query_of(back)["code"], verifier


def token_request(stack: Stack, fields: dict[str, str], auth: tuple[str, str] | None = (BROWSER_CLIENT, DEMO_SECRET),
                  headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(f"{stack.issuer}/connect/token", data={k: v for k, v in fields.items() if v is not None},
                         auth=auth, headers=headers, timeout=15)


def exchange(stack: Stack, code: str, verifier: str | None, redirect_uri: str | None = None,
             auth: tuple[str, str] | None = (BROWSER_CLIENT, DEMO_SECRET), **extra: str) -> requests.Response:
    return token_request(stack, {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                 "redirect_uri": redirect_uri or stack.redirect_uri, **extra}, auth)


def signed_in_tokens(stack: Stack, username: str = "alice") -> tuple[Attacker, dict]:
    """Sign in through the code flow and return the browser and the token response."""
    browser = Attacker(stack)
    code, verifier = browser.code() if username == "alice" else _code_for(browser, username)
    response = exchange(stack, code, verifier)
    assert response.status_code == 200, response.text
    return browser, response.json()


def _code_for(browser: Attacker, username: str) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    back = browser.sign_in(username, username, challenge=challenge)
    return query_of(back)["code"], verifier


def machine_token(stack: Stack) -> str:
    response = token_request(stack, {"grant_type": "client_credentials"}, (MACHINE_CLIENT, DEMO_SECRET))
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def introspection(stack: Stack, token: str) -> dict:
    """Return the RFC 7662 introspection of `token`, asked by the machine client."""
    response = requests.post(f"{stack.issuer}/connect/introspect", data={"token": token},
                             auth=(MACHINE_CLIENT, DEMO_SECRET), timeout=15)
    assert response.status_code == 200, response.text
    return response.json()


def webclient_callback(stack: Stack, browser: Attacker) -> requests.Response:
    """Start a sign-in at the webclient, sign in as alice, and return the redirect to its callback."""
    login_page = browser.follow(browser.follow(browser.get(f"{stack.webclient_url}/signin")))
    back = browser.follow(browser.submit(login_page, username="alice", password="alice", action="login"))
    assert back.status_code == 302
    assert back.headers["Location"].startswith(stack.redirect_uri)
    return back


def assert_oauth_error(response: requests.Response, status: int, error: str) -> None:
    """Check an RFC 6749 §5.2 error response: status, JSON `error`, and no caching."""
    assert response.status_code == status, response.text[:300]
    assert response.json()["error"] == error
    assert response.headers["Cache-Control"] == "no-store"


# -- summary ----------------------------------------------------------------

_outcomes: dict[str, dict[str, int]] = defaultdict(lambda: {"passed": 0, "failed": 0, "skipped": 0})


def pytest_runtest_logreport(report) -> None:
    if "tests/security/" not in report.nodeid.replace("\\", "/"):
        return
    family = Path(report.nodeid.split("::")[0]).stem.removeprefix("test_").replace("_", " ")
    if report.when == "call":
        if report.passed:
            outcome = "passed"
        elif report.failed:
            outcome = "failed"
        else:
            outcome = "skipped"
        _outcomes[family][outcome] += 1
    elif report.failed:
        _outcomes[family]["failed"] += 1
    elif report.skipped:
        _outcomes[family]["skipped"] += 1


def pytest_terminal_summary(terminalreporter) -> None:
    if not _outcomes:
        return
    terminalreporter.section("security threat families")
    for family in sorted(_outcomes):
        counts = _outcomes[family]
        total = sum(counts.values())
        verdict = "pass" if counts["failed"] == 0 and counts["skipped"] == 0 else "FAIL"
        terminalreporter.write_line(f"{family:<24} {total:>3} cases  {counts['passed']:>3} passed  "
                                    f"{counts['failed']:>3} failed  {counts['skipped']:>3} skipped  {verdict}")


# -- a gateway in front of an echo server -------------------------------------

ECHO_ROUTES = """
[downstreams.echo]
hosts = ["{echo_url}"]

[[routes]]
name = "things"
upstream_path = "/things/{{*rest}}"
downstream_path = "/api/things/{{rest}}"
downstream = "echo"
timeout = 5.0

[routes.authentication]
scopes = ["movieAPI"]

[routes.claims_to_headers]
X-Client-Id = "client_id"
X-User-Role = "role"

[[routes]]
name = "item"
upstream_path = "/items/{{id}}"
downstream_path = "/api/items/{{id}}"
downstream = "echo"
timeout = 5.0
"""


class EchoServer:
    """A threaded HTTP server that returns the path and headers it received as JSON."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def _echo(self) -> None:
                paths.append(self.path)
                length = int(self.headers.get("Content-Length", "0"))
                if length:
                    self.rfile.read(length)
                body = json.dumps({"path": self.path, "headers": [[n, v] for n, v in self.headers.items()]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close, X-Private")
                self.send_header("X-Private", "hop-by-hop")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _echo

            def log_message(self, *args) -> None:
                pass

        self.loopback = LoopbackServer(Handler)
        self.port = self.loopback.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.loopback.stop()


@dataclass
class EchoGateway:
    gateway: ServiceProcess
    echo: EchoServer


@pytest.fixture(scope="package")
def echo_gateway(stack, tmp_path_factory):
    folder = tmp_path_factory.mktemp("echo_gateway")
    echo = EchoServer()
    routes = folder / "routes.toml"
    routes.write_text(ECHO_ROUTES.format(echo_url=echo.url))
    gateway = ServiceProcess("gateway_srv", {"REDIS_URL": stack.redis_url, "ISSUER": stack.issuer,
                                             "GATEWAY__ROUTES__FILE": str(routes), "LOG_LEVEL": "info"},
                             folder / "gateway.log")
    try:
        gateway.start()
        yield EchoGateway(gateway, echo)
    finally:
        gateway.stop()
        echo.stop()


def raw_request(url: str, request: bytes, timeout: float = 15) -> bytes:
    """Send bytes as they are over one connection and return everything read until it closes."""
    host, port = url.removeprefix("http://").split(":")
    chunks = []
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(request)
        while True:
            try:
                chunk = connection.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)
