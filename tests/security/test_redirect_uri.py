"""Redirect URI manipulation and open redirects (RFC 9700 §4.1, §4.11; RFC 6749 §3.1.2.4)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from .conftest import Attacker, signed_in_tokens


def redirect_variants(registered: str) -> list[str]:
    parts = urlsplit(registered)
    return [
        "http://evil.example/signin-oidc",
        registered + "/",
        registered + "/../evil",
        registered + "?next=http://evil.example",
        registered + "#fragment",
        registered.upper(),
        f"{parts.scheme}://{parts.netloc}@evil.example{parts.path}",
        f"{parts.scheme}://{parts.hostname}:{parts.port + 1}{parts.path}",
        f"https://{parts.netloc}{parts.path}",
        registered.replace("signin-oidc", "signin-oidc%2F..%2Fevil"),
        "",
    ]


@pytest.mark.parametrize("index", range(11))
def test_authorize_unregistered_redirect_no_redirect(stack, index):
    # RFC 6749 §3.1.2.4 / RFC 9700 §4.1: exact string match; a mismatch is shown to the user, never redirected.
    redirect_uri = redirect_variants(stack.redirect_uri)[index]
    response = Attacker(stack).authorize(redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "text/html" in response.headers["Content-Type"]


def test_authorize_unknown_client_no_redirect(stack):
    # RFC 6749 §4.1.2.1: with an invalid client_id the server must not redirect.
    response = Attacker(stack).authorize(client_id="evil_client", redirect_uri="http://evil.example/cb")
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_logout_unregistered_redirect_no_redirect(stack):
    # OpenID Connect RP-Initiated Logout 1.0 §3: post_logout_redirect_uri must be registered.
    browser, tokens = signed_in_tokens(stack)
    response = browser.get(f"{stack.issuer}/connect/endsession", id_token_hint=tokens["id_token"],
                           post_logout_redirect_uri="http://evil.example/")
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_logout_redirect_without_hint_not_followed(stack):
    # RP-Initiated Logout 1.0 §3: without id_token_hint the client is unknown, so no redirect to the given URI.
    response = Attacker(stack).get(f"{stack.issuer}/connect/endsession",
                                   post_logout_redirect_uri=stack.logout_redirect_uri)
    assert response.status_code in (200, 400)
    assert "Location" not in response.headers


@pytest.mark.parametrize("return_url", [
    "//evil.example/", "/\\evil.example", "http://evil.example/", "https:evil.example",
    "/%0d%0aLocation:%20http://evil.example", "javascript:alert(1)",
])
def test_webclient_signin_return_url_stays_local(stack, return_url):
    # RFC 9700 §4.11: a client must not redirect to a URL taken from the request without checking it.
    response = Attacker(stack).get(f"{stack.webclient_url}/signin", return_url=return_url)
    location = response.headers.get("Location", "")
    assert response.status_code == 302
    assert location.startswith(f"{stack.issuer}/connect/authorize?") or location == "/"
    assert "evil.example" not in location.split("?")[0]
