"""Clickjacking and the security headers of every HTML page (RFC 9700 §4.16, RFC 6749 §10.13)."""

from __future__ import annotations

import pytest
import requests

from .conftest import (
    OTHER_CLIENT,
    OTHER_REDIRECT,
    Attacker,
    signed_in_tokens,
    webclient_callback,
)


def assert_page_headers(response: requests.Response) -> None:
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[-1].split(";")[0]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_login_page_cannot_be_framed(stack):
    # RFC 9700 §4.16: the authorization server's pages must forbid framing (X-Frame-Options, frame-ancestors).
    browser = Attacker(stack)
    page = browser.follow(browser.authorize())
    assert page.status_code == 200
    assert_page_headers(page)


def test_failed_login_page_cannot_be_framed(stack):
    # RFC 9700 §4.16: the page shown after a failed sign-in is protected the same way.
    browser = Attacker(stack)
    page = browser.follow(browser.authorize())
    failed = browser.submit(page, username="alice", password="clickjack-wrong", action="login")
    assert failed.status_code == 401
    assert_page_headers(failed)


def test_consent_page_cannot_be_framed(stack):
    # RFC 6749 §10.13: a framed consent page would let another site click "allow".
    browser = Attacker(stack)
    page = browser.follow(browser.sign_in(client_id=OTHER_CLIENT, redirect_uri=OTHER_REDIRECT, scope="openid"))
    assert page.status_code == 200
    assert_page_headers(page)


def test_logout_page_cannot_be_framed(stack):
    # RFC 9700 §4.16: the logout confirmation is a page with a button, so it must not be framed.
    browser, _ = signed_in_tokens(stack)
    page = browser.get(f"{stack.issuer}/connect/endsession")
    assert page.status_code == 200
    assert_page_headers(page)


def test_provider_error_page_cannot_be_framed(stack):
    # RFC 9700 §4.16: error pages are HTML too.
    page = Attacker(stack).authorize(redirect_uri="http://evil.example/")
    assert page.status_code == 400
    assert_page_headers(page)


@pytest.mark.parametrize("path", ["/", "/claims", "/movies", "/no-such-page"])
def test_webclient_pages_cannot_be_framed(stack, path):
    # RFC 9700 §4.16: the client's pages carry the same protection, signed in or not.
    browser = Attacker(stack)
    browser.follow(webclient_callback(stack, browser))
    page = browser.get(f"{stack.webclient_url}{path}")
    assert page.status_code in (200, 404)
    assert_page_headers(page)


def test_webclient_anonymous_page_cannot_be_framed(stack):
    # RFC 9700 §4.16: also before sign-in.
    page = Attacker(stack).get(f"{stack.webclient_url}/")
    assert page.status_code == 200
    assert_page_headers(page)
