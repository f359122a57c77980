"""Mix-up attacks: the issuer in the authorization response (RFC 9700 §4.4, RFC 9207)."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import requests

from tests.signin.conftest import query_of

from .conftest import Attacker, webclient_callback


def test_discovery_announces_iss_parameter(stack):
    # RFC 9207 §3: the metadata states that authorization responses carry iss.
    metadata = requests.get(f"{stack.issuer}/.well-known/openid-configuration", timeout=15).json()
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["issuer"] == stack.issuer


def test_success_response_carries_iss(stack):
    # RFC 9207 §2: a successful authorization response includes iss.
    back = Attacker(stack).sign_in()
    assert query_of(back)["iss"] == stack.issuer


def test_error_response_carries_iss(stack):
    # RFC 9207 §2: error responses carry iss too.
    response = Attacker(stack).authorize(prompt="none")
    query = query_of(response)
    assert query["error"] == "login_required"
    assert query["iss"] == stack.issuer


def test_webclient_refuses_foreign_iss(stack):
    # RFC 9207 §2.4: a client that receives another issuer's iss must reject the response.
    browser = Attacker(stack)
    back = webclient_callback(stack, browser)
    query = query_of(back)
    query["iss"] = "http://evil.example"
    response = browser.get(f"{stack.webclient_url}{urlsplit(back.headers['Location']).path}?{urlencode(query)}")
    assert response.status_code == 400
    assert "webclient_session" not in browser.http.cookies


def test_webclient_refuses_missing_iss(stack):
    # RFC 9207 §2.4: when the provider announced iss, a response without it is rejected.
    browser = Attacker(stack)
    query = query_of(webclient_callback(stack, browser))
    query.pop("iss")
    response = browser.get(f"{stack.redirect_uri}?{urlencode(query)}")
    assert response.status_code == 400
    assert "webclient_session" not in browser.http.cookies


def test_webclient_accepts_own_iss(stack):
    # The control case: the unaltered response signs the browser in.
    browser = Attacker(stack)
    back = webclient_callback(stack, browser)
    response = browser.follow(back)
    assert response.status_code == 302
    assert "webclient_session" in browser.http.cookies
