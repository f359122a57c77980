"""Start identity_srv as a real process and fetch real tokens from it.

For any test that needs an access token: start the provider with `start_identity`
against the session stores (`store_env`), then call `client_credentials_token`.
The `identity` fixture in tests/identity/conftest.py does both steps for the
provider's own tests; other test folders can import the `identity_service`
fixture below into their conftest.py.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.support.processes import ServiceProcess

DEMO_CLIENT_ID = "movieClient"
DEMO_CLIENT_SECRET = "secret"


def start_identity(store_env: dict[str, str], log_path: Path, **extra_env: str) -> ServiceProcess:
    """Start identity_srv on a free port with its issuer set to that port's URL."""
    service = ServiceProcess("identity_srv", {**store_env, **extra_env}, log_path)
    service.env.setdefault("ISSUER", service.url)
    return service.start()


def basic_authorization(client_id: str, secret: str) -> str:
    """Return a `Basic` header value with the RFC 6749 §2.3.1 form-urlencoding of id and secret."""
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def post_form(url: str, fields: dict[str, str] | list[tuple[str, str]] | bytes,
              headers: dict[str, str] | None = None, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """POST a form (or raw bytes) and return (status, headers, body), also for 4xx and 5xx."""
    body = fields if isinstance(fields, bytes) else urllib.parse.urlencode(fields).encode("ascii")
    all_headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def client_credentials_token(identity_url: str, client_id: str = DEMO_CLIENT_ID,
                             secret: str = DEMO_CLIENT_SECRET, scope: str | None = None) -> str:
    """Return an access token from the client_credentials grant; fail the test if none comes."""
    fields = {"grant_type": "client_credentials"}
    if scope is not None:
        fields["scope"] = scope
    status, _, body = post_form(f"{identity_url}/connect/token", fields,
                                {"Authorization": basic_authorization(client_id, secret)})
    assert status == 200, f"token request failed with {status}: {body!r}"
    return json.loads(body)["access_token"]


@pytest.fixture
def identity_service(store_env, tmp_path):
    """A running identity_srv process on a free port; stopped after the test."""
    service = start_identity(store_env, tmp_path / "identity_srv.log")
    yield service
    service.stop()
