"""HEAD on the provider's JSON documents, and `Allow` on every 405, against a real identity_srv.

HEAD is served where a GET is safe to repeat and returns JSON: discovery, the
JWKS and the health checks. The HTML pages, the authorization endpoint and the
end-session endpoint do not serve it.
"""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest


def send(base_url: str, method: str, path: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/openid-configuration/jwks",
                                  "/healthz", "/readyz"])
def test_head_matches_get_without_body(shared_provider, path):
    get_status, get_headers, get_body = send(shared_provider.url, "GET", path)
    head_status, head_headers, head_body = send(shared_provider.url, "HEAD", path)
    assert get_status == 200
    assert head_status == 200
    assert head_body == b""
    assert head_headers["Content-Length"] == str(len(get_body))
    assert head_headers["Content-Type"] == get_headers["Content-Type"]
    assert head_headers["Cache-Control"] == get_headers["Cache-Control"]


ALLOW_CASES = [
    # (case id, method, path, expected Allow)
    ("post_discovery", "POST", "/.well-known/openid-configuration", "GET, HEAD"),
    ("delete_jwks", "DELETE", "/.well-known/openid-configuration/jwks", "GET, HEAD"),
    ("get_token", "GET", "/connect/token", "POST"),
    ("get_introspection", "GET", "/connect/introspect", "POST"),
    ("head_authorize", "HEAD", "/connect/authorize", "GET, POST"),
    ("head_end_session", "HEAD", "/connect/endsession", "GET, POST"),
    ("head_login_page", "HEAD", "/account/login", "GET, POST"),
    ("options_consent_page", "OPTIONS", "/account/consent", "GET, POST"),
    ("head_resume", "HEAD", "/connect/authorize/resume", "GET"),
]


@pytest.mark.parametrize("method,path,allow", [case[1:] for case in ALLOW_CASES],
                         ids=[case[0] for case in ALLOW_CASES])
def test_405_lists_allowed_methods(shared_provider, method, path, allow):
    status, headers, _ = send(shared_provider.url, method, path)
    assert status == 405
    assert headers["Allow"] == allow
