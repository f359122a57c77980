"""A real identity_srv with seeded users, and a scripted browser for the sign-in pages."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from tests.support.identity import start_identity
from tests.support.loopback import LoopbackServer
from tests.support.processes import ROOT

CONF_CLIENTS = ROOT / "conf" / "clients.toml"
WEB_REDIRECT = "http://localhost:5002/signin-oidc"
WEB_LOGOUT_REDIRECT = "http://localhost:5002/signout-callback-oidc"
SCOPE = "openid profile email address roles movieAPI offline_access"


class LogoutReceiver:
    """A real HTTP server that records back-channel logout requests."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, list[str]]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                received.append(parse_qs(self.rfile.read(length).decode("ascii")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.loopback = LoopbackServer(Handler)
        self.port = self.loopback.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/backchannel"

    def stop(self) -> None:
        self.loopback.stop()


def extra_clients(backchannel_url: str) -> str:
    return f'''
[[clients]]
client_id = "consent_client"
name = "Consent-requiring client"
secret_hash = "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
grant_types = ["authorization_code", "refresh_token"]
redirect_uris = ["http://127.0.0.1:9/cb"]
scopes = ["openid", "profile", "movieAPI", "offline_access"]
require_consent = true

[[clients]]
client_id = "spa_client"
name = "Public single-page client"
grant_types = ["authorization_code"]
redirect_uris = ["http://127.0.0.1:9/spa"]
scopes = ["openid", "profile", "movieAPI"]
backchannel_logout_uri = "{backchannel_url}"
'''


def seed_users(env: dict[str, str]) -> None:
    result = subprocess.run([sys.executable, "scripts/seed_users.py"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def receiver():
    receiver = LogoutReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def provider_env(store_env, tmp_path, receiver):
    clients = tmp_path / "clients.toml"
    clients.write_text(CONF_CLIENTS.read_text() + extra_clients(receiver.url))
    env = {**store_env, "IDENTITY__CLIENTS__FILE": str(clients), "PATH": "/usr/bin:/bin"}
    seed_users(env)
    return env


@pytest.fixture
def start_provider(provider_env, tmp_path):
    """Start identity_srv processes with extra settings; each is stopped after the test."""
    started = []

    def start(**extra_env: str):
        service = start_identity(provider_env, tmp_path / f"identity-{len(started)}.log", **extra_env)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def provider(start_provider):
    return start_provider()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def hidden_fields(html: str) -> dict[str, str]:
    return {name: value.replace("&amp;", "&") for name, value in _HIDDEN.findall(html)}


class Browser:
    """A cookie-keeping HTTP client that follows redirects one step at a time."""

    def __init__(self, issuer: str):
        self.issuer = issuer
        self.http = requests.Session()

    def get(self, url: str, **params) -> requests.Response:
        return self.http.get(url, params=params or None, allow_redirects=False, timeout=15)

    def follow(self, response: requests.Response) -> requests.Response:
        assert response.status_code in (302, 303), f"expected a redirect, got {response.status_code}: {response.text[:300]}"
        return self.get(urljoin(response.url, response.headers["Location"]))

    def authorize(self, client_id: str = "movies_mvc_client", redirect_uri: str = WEB_REDIRECT,
                  scope: str = SCOPE, challenge: str | None = None, **extra) -> requests.Response:
        params = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code",
                  "scope": scope, "state": "state-123", "nonce": "nonce-456",
                  "code_challenge": challenge or pkce_pair()[1], "code_challenge_method": "S256", **extra}
        return self.get(f"{self.issuer}/connect/authorize", **{k: v for k, v in params.items() if v is not None})

    def submit(self, page: requests.Response, **fields) -> requests.Response:
        """Post the page's form with its hidden fields plus `fields`."""
        action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
        data = {**hidden_fields(page.text), **fields}
        return self.http.post(urljoin(page.url, action), data=data, allow_redirects=False, timeout=15)

    def sign_in(self, username: str, password: str, remember: bool = False, **authorize) -> requests.Response:
        """Authorize, sign in on the login page, and return the redirect to the client."""
        login_page = self.follow(self.authorize(**authorize))
        fields = {"username": username, "password": password, "action": "login"}
        if remember:
            fields["remember"] = "1"
        resumed = self.submit(login_page, **fields)
        return self.follow(resumed)


def query_of(response: requests.Response) -> dict[str, str]:
    """Return the query parameters of a redirect's Location, one value each."""
    location = response.headers["Location"]
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def location_base(response: requests.Response) -> str:
    parts = urlsplit(response.headers["Location"])
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def basic(client_id: str = "movies_mvc_client", secret: str = "secret") -> tuple[str, str]:
    return (client_id, secret)


def exchange(issuer: str, code: str, verifier: str, redirect_uri: str = WEB_REDIRECT,
             auth: tuple[str, str] | None = ("movies_mvc_client", "secret"), **extra) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier, **extra}
    return requests.post(f"{issuer}/connect/token", data={k: v for k, v in data.items() if v is not None},
                         auth=auth, timeout=15)


def refresh(issuer: str, refresh_token: str, auth=("movies_mvc_client", "secret"), **extra) -> requests.Response:
    return requests.post(f"{issuer}/connect/token", data={"grant_type": "refresh_token",
                                                          "refresh_token": refresh_token, **extra},
                         auth=auth, timeout=15)


def introspect(issuer: str, token: str) -> dict:
    response = requests.post(f"{issuer}/connect/introspect", data={"token": token},
                             auth=("movieClient", "secret"), timeout=15)
    assert response.status_code == 200
    return response.json()

