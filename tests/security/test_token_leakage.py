"""Token leakage through logs, Referer and caches (RFC 9700 §4.2; RFC 6749 §5.1, §10.3, §10.5; RFC 6750 §5.3)."""

from __future__ import annotations

import base64
import re

import requests

from tests.conftest import secrets_in_logs
from tests.signin.conftest import pkce_pair, query_of

from .conftest import (
    BROWSER_CLIENT,
    DEMO_SECRET,
    MACHINE_CLIENT,
    Attacker,
    exchange,
    introspection,
    token_request,
    webclient_callback,
)

WRONG_PASSWORD = "Leak-Check-wrong-password-5f1c"


def run_full_flow(stack) -> set[str]:
    """Run every kind of request once and return each secret value sent or received."""
    secrets = {WRONG_PASSWORD, base64.b64encode(f"{BROWSER_CLIENT}:{DEMO_SECRET}".encode()).decode(),
               base64.b64encode(f"{MACHINE_CLIENT}:{DEMO_SECRET}".encode()).decode()}

    machine = token_request(stack, {"grant_type": "client_credentials"}, (MACHINE_CLIENT, DEMO_SECRET)).json()
    secrets.add(machine["access_token"])

    failed = Attacker(stack)
    login_page = failed.follow(failed.authorize())
    assert failed.submit(login_page, username="alice", password=WRONG_PASSWORD, action="login").status_code == 401

    browser = Attacker(stack)
    verifier, challenge = pkce_pair()
    back = browser.sign_in(challenge=challenge)
    code = query_of(back)["code"]
    secrets |= {code, verifier, browser.http.cookies["idp.session"]}
    tokens = exchange(stack, code, verifier).json()
    secrets |= {tokens["access_token"], tokens["refresh_token"], tokens["id_token"]}

    rotated = token_request(stack, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}).json()
    secrets |= {rotated["access_token"], rotated["refresh_token"]}

    bearer = {"Authorization": f"Bearer {rotated['access_token']}"}
    assert requests.get(f"{stack.issuer}/connect/userinfo", headers=bearer, timeout=15).status_code == 200
    assert requests.get(f"{stack.gateway.url}/movies", headers=bearer, timeout=15).status_code == 200
    assert introspection(stack, rotated["refresh_token"])["active"] is True
    revoked = requests.post(f"{stack.issuer}/connect/revocation", data={"token": rotated["refresh_token"]},
                            auth=(BROWSER_CLIENT, DEMO_SECRET), timeout=15)
    assert revoked.status_code == 200

    # The webclient's own sign-in: its callback carries a code, its cookie a session id.
    web = Attacker(stack)
    callback = webclient_callback(stack, web)
    secrets.add(query_of(callback)["code"])
    assert web.follow(callback).status_code == 302
    secrets.add(web.http.cookies["webclient_session"])
    assert web.get(f"{stack.webclient_url}/movies").status_code == 200

    logout = browser.get(f"{stack.issuer}/connect/endsession", id_token_hint=tokens["id_token"])
    assert logout.status_code in (200, 302)
    return secrets


def test_flow_leaves_no_secret_in_logs(stack):
    # RFC 6749 §10.3 and §10.5: tokens and codes stay confidential in storage, so no log contains one.
    secrets = run_full_flow(stack)
    logs = {service.package: service.log() for service in stack.services()}
    assert all(logs.values())
    for package, text in logs.items():
        for secret in secrets:
            assert secret not in text, f"{package} logged a secret starting {secret[:6]}"
    assert "password=alice" not in "".join(logs.values())


def test_logs_have_no_secret_shapes(stack):
    # RFC 6749 §10.3: no JWT, refresh token or secret pair anywhere in the stack's logs.
    run_full_flow(stack)
    assert secrets_in_logs([service.log_path for service in stack.services()]) == []


def test_scanner_finds_planted_secrets(tmp_path):
    # The check above must be able to fail: a planted token and pair are found.
    log = tmp_path / "planted.log"
    log.write_text("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln\n"
                   "rt AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\n"
                   "form password=hunter2 and client_secret=s3cr3t\n"
                   "masked password=[redacted]\n")
    kinds = [line.split(": ")[1] for line in secrets_in_logs([log])]
    assert kinds == ["JWT", "refresh token", "password pair", "client_secret pair"]


def test_code_pages_send_no_referrer(stack):
    # RFC 9700 §4.2: pages that may carry codes or tokens in their URL send Referrer-Policy: no-referrer.
    browser = Attacker(stack)
    login_page = browser.follow(browser.authorize())
    assert login_page.headers["Referrer-Policy"] == "no-referrer"
    web = Attacker(stack)
    callback = webclient_callback(stack, web)
    landing = web.follow(callback)
    assert landing.headers["Referrer-Policy"] == "no-referrer"
    error = web.get(f"{stack.redirect_uri}?code=leaked-code&state=x&iss={stack.issuer}")
    assert error.status_code == 400
    assert error.headers["Referrer-Policy"] == "no-referrer"


def test_token_responses_not_cached(stack):
    # RFC 6749 §5.1: every token response, success or error, carries Cache-Control: no-store.
    success = token_request(stack, {"grant_type": "client_credentials"}, (MACHINE_CLIENT, DEMO_SECRET))
    failure = token_request(stack, {"grant_type": "password", "username": "a", "password": "b"})
    bad_client = token_request(stack, {"grant_type": "client_credentials"}, (MACHINE_CLIENT, "wrong"))
    for response in (success, failure, bad_client):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Pragma"] == "no-cache"


def test_userinfo_and_introspection_not_cached(stack):
    # RFC 6749 §10.3: responses that describe a token are not stored by caches either.
    token = token_request(stack, {"grant_type": "client_credentials"}, (MACHINE_CLIENT, DEMO_SECRET)).json()
    described = requests.post(f"{stack.issuer}/connect/introspect", data={"token": token["access_token"]},
                              auth=(MACHINE_CLIENT, DEMO_SECRET), timeout=15)
    assert described.headers["Cache-Control"] == "no-store"


def test_token_in_query_refused(stack):
    # RFC 6750 §5.3: bearer tokens in page URLs end up in logs, so the API does not accept them there.
    token = token_request(stack, {"grant_type": "client_credentials"}, (MACHINE_CLIENT, DEMO_SECRET)).json()
    response = requests.get(f"{stack.movies.url}/api/movies", params={"access_token": token["access_token"]},
                            timeout=15)
    assert response.status_code in (400, 401)
    assert token["access_token"] not in stack.movies.log()
    assert re.search(r"access_token=eyJ", stack.movies.log()) is None
