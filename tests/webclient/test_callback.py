"""Callbacks at /signin-oidc that must not sign anyone in, each ending on a clear page.

The pending sign-in is started for real (the page redirects to the provider's
authorization endpoint); the provider's response is then crafted by the test.
"""

from __future__ import annotations

import re
import urllib.parse

import pytest

from tests.support.processes import wait_for

from .browser import Browser, Page
from .conftest import SESSION_COOKIE


def start_sign_in(stack, path: str = "/movies") -> tuple[Browser, dict[str, str]]:
    browser = Browser(stack.webclient.url)
    page = browser.get(path)
    assert page.status == 302, page.body
    return browser, dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.location).query))


def callback(browser: Browser, **arguments: str) -> Page:
    return browser.get("/signin-oidc?" + urllib.parse.urlencode(arguments))


def assert_failed_page(page: Page, status: int, error: str) -> None:
    assert page.status == status, page.body
    assert page.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert page.error_code() == error
    assert "Traceback" not in page.body
    assert not any(header.startswith(f"{SESSION_COOKIE}=") for header in page.set_cookies())


def test_tampered_state_is_rejected(page_stack):
    browser, request = start_sign_in(page_stack)
    tampered = request["state"][:-1] + ("A" if request["state"][-1] != "A" else "B")
    page = callback(browser, code="abc", state=tampered, iss=page_stack.issuer.url)
    assert_failed_page(page, 400, "invalid_state")
    assert "does not belong to the sign-in this browser started" in page.text
    assert 'href="/signin?return_url=%2F"' in page.body


def test_callback_query_stays_out_of_the_log(page_stack):
    browser, request = start_sign_in(page_stack)
    # The test issuer has no token endpoint, so the code exchange fails with 502.
    callback(browser, code="secret-code-value", state=request["state"], iss=page_stack.issuer.url)
    callback_line = re.compile(r"ERROR webclient_srv\.access GET /signin-oidc 502 [0-9.]+ms rid=\w+ client=- sub=-\n")
    # The access line is written after the response is sent.
    wait_for(lambda: callback_line.search(page_stack.webclient.log()), 5, message="the callback's access line")
    log = page_stack.webclient.log()
    assert re.search(r"INFO webclient_srv\.access GET /movies 302 [0-9.]+ms rid=\w+ client=- sub=-\n", log)
    assert "secret-code-value" not in log
    assert request["state"] not in log
    assert request["nonce"] not in log


def test_callback_with_error_shows_the_reason(page_stack):
    browser, request = start_sign_in(page_stack, "/claims")
    page = callback(browser, error="access_denied", error_description="<b>denied</b>", state=request["state"],
                    iss=page_stack.issuer.url)
    assert_failed_page(page, 400, "provider_error")
    assert "The sign-in was cancelled or refused." in page.text
    # The provider's description is not echoed: it is text an attacker can choose.
    assert "denied</b>" not in page.text
    # "Sign in again" returns to the page that was asked for.
    assert 'href="/signin?return_url=%2Fclaims"' in page.body


def test_replayed_callback_is_rejected(page_stack):
    browser, request = start_sign_in(page_stack)
    arguments = {"error": "access_denied", "state": request["state"], "iss": page_stack.issuer.url}
    assert_failed_page(callback(browser, **arguments), 400, "provider_error")
    replayed = callback(browser, **arguments)
    assert_failed_page(replayed, 400, "unknown_sign_in")
    assert "This sign-in was already completed, or it took too long." in replayed.text


def test_callback_in_another_browser_is_rejected(page_stack):
    _, request = start_sign_in(page_stack)
    page = callback(Browser(page_stack.webclient.url), code="abc", state=request["state"])
    assert_failed_page(page, 400, "unknown_sign_in")


def test_callback_from_another_issuer_is_rejected(page_stack):
    browser, request = start_sign_in(page_stack)
    page = callback(browser, code="abc", state=request["state"], iss="https://attacker.example")
    assert_failed_page(page, 400, "invalid_callback")
    assert "came from another identity provider" in page.text


@pytest.mark.parametrize("arguments", [
    pytest.param({"code": "abc"}, id="fails because state is missing"),
    pytest.param({"state": "{state}"}, id="fails because code is missing"),
])
def test_incomplete_callback_is_rejected(page_stack, arguments):
    browser, request = start_sign_in(page_stack)
    filled = {name: value.format(state=request["state"]) for name, value in arguments.items()}
    assert_failed_page(callback(browser, **filled), 400, "invalid_callback")


def test_return_url_must_stay_on_the_site(page_stack):
    browser = Browser(page_stack.webclient.url)
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        page = browser.get("/signin?return_url=" + urllib.parse.quote(target, safe=""))
        assert page.status == 302
    assert sorted(page_stack.pending_return_urls(browser.cookies["webclient_signin"])) == ["/"] * 4
