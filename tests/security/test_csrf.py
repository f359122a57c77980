"""CSRF on sign-in, consent and logout (RFC 9700 §4.7, RFC 6749 §10.12; OIDC RP-Initiated Logout §2)."""

from __future__ import annotations

from urllib.parse import urlencode

from tests.signin.conftest import hidden_fields, query_of

from .conftest import (
    OTHER_CLIENT,
    OTHER_REDIRECT,
    Attacker,
    signed_in_tokens,
    webclient_callback,
)


def test_login_post_without_xsrf(stack):
    # RFC 6749 §10.12: a cross-site form post (login CSRF) lacks the page's XSRF token and is refused.
    browser = Attacker(stack)
    login_page = browser.follow(browser.authorize())
    fields = hidden_fields(login_page.text)
    fields.pop("_xsrf")
    response = browser.post(f"{stack.issuer}/account/login", {**fields, "username": "alice", "password": "alice",
                                                              "action": "login"})
    assert response.status_code == 403
    assert "idp.session" not in browser.http.cookies


def test_login_post_with_foreign_xsrf(stack):
    # RFC 6749 §10.12: the attacker's own XSRF token does not match the victim's cookie.
    attacker = Attacker(stack)
    attacker_fields = hidden_fields(attacker.follow(attacker.authorize()).text)
    victim = Attacker(stack)
    victim_fields = hidden_fields(victim.follow(victim.authorize()).text)
    response = victim.post(f"{stack.issuer}/account/login", {**victim_fields, "_xsrf": attacker_fields["_xsrf"],
                                                             "username": "alice", "password": "alice",
                                                             "action": "login"})
    assert response.status_code == 403
    assert "idp.session" not in victim.http.cookies


def test_consent_post_without_xsrf(stack):
    # RFC 6749 §10.12: a forged "allow" on the consent page is refused, and no code is issued.
    browser = Attacker(stack)
    consent_page = browser.follow(browser.sign_in(client_id=OTHER_CLIENT, redirect_uri=OTHER_REDIRECT,
                                                  scope="openid profile"))
    assert "Allow access?" in consent_page.text
    fields = hidden_fields(consent_page.text)
    fields.pop("_xsrf")
    response = browser.post(f"{stack.issuer}/account/consent", {**fields, "decision": "allow"})
    assert response.status_code == 403
    assert "Location" not in response.headers


def test_logout_confirm_without_xsrf(stack):
    # OIDC RP-Initiated Logout §2 and RFC 9700 §4.7: a forged logout confirmation keeps the session.
    browser, _ = signed_in_tokens(stack)
    page = browser.get(f"{stack.issuer}/connect/endsession")
    assert page.status_code == 200
    forged = browser.post(f"{stack.issuer}/connect/endsession", {"confirm": "1"})
    assert forged.status_code == 403
    assert "code" in query_of(browser.authorize(prompt="none"))


def test_logout_get_without_hint_asks(stack):
    # OIDC RP-Initiated Logout §2: a bare GET (an <img> on another site) must not sign the user out.
    browser, _ = signed_in_tokens(stack)
    page = browser.get(f"{stack.issuer}/connect/endsession")
    assert page.status_code == 200
    assert "Sign out?" in page.text
    assert "code" in query_of(browser.authorize(prompt="none"))


def test_webclient_callback_with_foreign_state(stack):
    # RFC 9700 §4.7: the client binds state to the browser; another browser's response is refused.
    victim = Attacker(stack)
    victim.get(f"{stack.webclient_url}/signin")
    attacker = Attacker(stack)
    query = query_of(webclient_callback(stack, attacker))
    response = victim.get(f"{stack.redirect_uri}?{urlencode(query)}")
    assert response.status_code == 400
    assert "webclient_session" not in victim.http.cookies


def test_webclient_callback_without_pending_sign_in(stack):
    # RFC 9700 §4.7: a response the browser never asked for (login CSRF) signs nobody in.
    attacker = Attacker(stack)
    query = query_of(webclient_callback(stack, attacker))
    victim = Attacker(stack)
    response = victim.get(f"{stack.redirect_uri}?{urlencode(query)}")
    assert response.status_code == 400
    assert "webclient_session" not in victim.http.cookies


def test_webclient_signout_without_xsrf(stack):
    # RFC 6749 §10.12: a cross-site POST to /signout without the XSRF token keeps the session.
    browser = Attacker(stack)
    browser.follow(webclient_callback(stack, browser))
    assert "webclient_session" in browser.http.cookies
    response = browser.post(f"{stack.webclient_url}/signout", {})
    assert response.status_code == 403
    home = browser.get(f"{stack.webclient_url}/claims")
    assert home.status_code == 200
