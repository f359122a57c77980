"""Browser sign-in against a real identity_srv: code flow, PKCE, codes, refresh, UserInfo, logout."""

from __future__ import annotations

import concurrent.futures
import time

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey
from authlib.jose import jwt as authlib_jwt
from authlib.oidc.core import CodeIDToken

from identity_srv.id_tokens import left_half_hash
from tests.signin.conftest import (
    SCOPE, WEB_LOGOUT_REDIRECT, WEB_REDIRECT, Browser, exchange, hidden_fields, introspect, location_base,
    pkce_pair, query_of, refresh,
)
from tests.support.identity import client_credentials_token


def sign_in_and_exchange(issuer: str, username: str = "alice", password: str = "alice", **authorize):
    browser = Browser(issuer)
    verifier, challenge = pkce_pair()
    back = browser.sign_in(username, password, challenge=challenge, **authorize)
    assert back.status_code == 302
    response = exchange(issuer, query_of(back)["code"], verifier)
    assert response.status_code == 200, response.text
    return browser, response.json()


def jwks_of(issuer: str) -> dict:
    return requests.get(f"{issuer}/.well-known/openid-configuration/jwks", timeout=10).json()


def test_authlib_client_signs_in_refreshes_and_logs_out(provider):
    issuer = provider.url
    metadata = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    client = OAuth2Session("movies_mvc_client", "secret", scope=SCOPE, redirect_uri=WEB_REDIRECT,
                           code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic")
    verifier = pkce_pair()[0]
    url, state = client.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier,
                                                 nonce="n-authlib")

    # Sign in as a person would: follow to the login page and post the form.
    browser = Browser(issuer)
    login_page = browser.follow(browser.get(url))
    back = browser.follow(browser.submit(login_page, username="alice", password="alice", action="login"))
    assert location_base(back) == WEB_REDIRECT
    assert query_of(back)["iss"] == issuer

    token = client.fetch_token(metadata["token_endpoint"], authorization_response=back.headers["Location"],
                               code_verifier=verifier)
    claims = authlib_jwt.decode(token["id_token"], JsonWebKey.import_key_set(jwks_of(issuer)),
                                claims_cls=CodeIDToken,
                                claims_options={"iss": {"essential": True, "value": issuer}},
                                claims_params={"nonce": "n-authlib", "client_id": "movies_mvc_client",
                                               "access_token": token["access_token"]})
    claims.validate()
    assert claims["sub"] == "818727"
    assert claims["name"] == "Alice Smith"

    userinfo = client.get(metadata["userinfo_endpoint"], timeout=10)
    assert userinfo.status_code == 200
    assert userinfo.json()["email"] == "AliceSmith@email.com"

    refreshed = client.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert refreshed["access_token"] != token["access_token"]

    logout = browser.http.get(metadata["end_session_endpoint"], allow_redirects=False, timeout=10, params={
        "id_token_hint": token["id_token"], "post_logout_redirect_uri": WEB_LOGOUT_REDIRECT, "state": "bye"})
    assert logout.status_code == 302
    assert logout.headers["Location"] == f"{WEB_LOGOUT_REDIRECT}?state=bye"
    assert refresh(issuer, refreshed["refresh_token"]).json()["error"] == "invalid_grant"


def test_tokens_carry_expected_claims(provider):
    issuer = provider.url
    _, tokens = sign_in_and_exchange(issuer, "bob", "bob")
    keys = {key["kid"]: key for key in jwks_of(issuer)["keys"]}
    header = jwt.get_unverified_header(tokens["id_token"])
    key = jwt.PyJWK(keys[header["kid"]])
    id_claims = jwt.decode(tokens["id_token"], key, algorithms=[header["alg"]], audience="movies_mvc_client",
                           issuer=issuer)
    assert id_claims["sub"] == "88421113"
    assert id_claims["nonce"] == "nonce-456"
    assert id_claims["role"] == ["admin"]
    assert id_claims["at_hash"] == left_half_hash(tokens["access_token"], header["alg"])
    assert abs(id_claims["auth_time"] - time.time()) < 60
    assert id_claims["sid"]

    access_header = jwt.get_unverified_header(tokens["access_token"])
    access = jwt.decode(tokens["access_token"], key, algorithms=[header["alg"]], audience="movieAPI", issuer=issuer)
    assert access_header["typ"] == "at+jwt"
    assert access["sub"] == "88421113"
    assert access["client_id"] == "movies_mvc_client"
    assert access["role"] == ["admin"]
    assert access["name"] == "Bob Smith"
    assert access["scope"] == SCOPE
    assert tokens["token_type"] == "Bearer"


def test_discovery_advertises_code_flow(provider):
    metadata = requests.get(f"{provider.url}/.well-known/openid-configuration", timeout=10).json()
    assert metadata["authorization_endpoint"] == f"{provider.url}/connect/authorize"
    assert metadata["userinfo_endpoint"] == f"{provider.url}/connect/userinfo"
    assert metadata["end_session_endpoint"] == f"{provider.url}/connect/endsession"
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert set(metadata["grant_types_supported"]) == {"authorization_code", "client_credentials", "refresh_token"}
    assert metadata["backchannel_logout_supported"] is True


@pytest.mark.parametrize(
    ("change", "error", "description"),
    [
        pytest.param({"code_verifier": "x" * 43}, "invalid_grant", "code_verifier does not match the code_challenge",
                     id="wrong-verifier"),
        pytest.param({"code_verifier": None}, "invalid_request", "parameter 'code_verifier' is missing",
                     id="missing-verifier"),
        pytest.param({"redirect_uri": WEB_REDIRECT + "/"}, "invalid_grant",
                     "redirect_uri does not match the authorization request", id="redirect-trailing-slash"),
        pytest.param({"redirect_uri": None}, "invalid_request", "parameter 'redirect_uri' is missing",
                     id="missing-redirect-uri"),
        pytest.param({"code": "made-up"}, "invalid_grant", "the authorization code is invalid or expired",
                     id="unknown-code"),
    ],
)
def test_code_exchange_errors(provider, change, error, description):
    browser = Browser(provider.url)
    verifier, challenge = pkce_pair()
    code = query_of(browser.sign_in("alice", "alice", challenge=challenge))["code"]
    fields = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
              "redirect_uri": WEB_REDIRECT, **change}
    response = requests.post(f"{provider.url}/connect/token", auth=("movies_mvc_client", "secret"), timeout=10,
                             data={name: value for name, value in fields.items() if value is not None})
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}
    assert response.headers["Cache-Control"] == "no-store"


def test_code_of_other_client_rejected(provider):
    browser = Browser(provider.url)
    verifier, challenge = pkce_pair()
    code = query_of(browser.sign_in("alice", "alice", challenge=challenge))["code"]
    response = exchange(provider.url, code, verifier, auth=("consent_client", "secret"))
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant",
                               "error_description": "the authorization code was issued to another client"}


def test_replayed_code_revokes_its_tokens(provider):
    browser = Browser(provider.url)
    verifier, challenge = pkce_pair()
    code = query_of(browser.sign_in("alice", "alice", challenge=challenge))["code"]
    first = exchange(provider.url, code, verifier)
    assert first.status_code == 200
    assert introspect(provider.url, first.json()["access_token"])["active"] is True

    second = exchange(provider.url, code, verifier)
    assert second.status_code == 400
    assert second.json() == {"error": "invalid_grant", "error_description": "the authorization code was already used"}
    assert introspect(provider.url, first.json()["access_token"]) == {"active": False}
    assert refresh(provider.url, first.json()["refresh_token"]).json() == {
        "error": "invalid_grant", "error_description": "the refresh token was revoked"}


def test_expired_code_rejected(start_provider):
    provider = start_provider(IDENTITY__SIGNIN__CODE_LIFETIME="1")
    browser = Browser(provider.url)
    verifier, challenge = pkce_pair()
    code = query_of(browser.sign_in("alice", "alice", challenge=challenge))["code"]
    time.sleep(2.1)
    response = exchange(provider.url, code, verifier)
    assert response.status_code == 400
    assert response.json()["error_description"] == "the authorization code is invalid or expired"


def test_refresh_reuse_revokes_family(start_provider):
    provider = start_provider(IDENTITY__SIGNIN__REFRESH_REUSE_GRACE="0")
    _, tokens = sign_in_and_exchange(provider.url)
    rotated = refresh(provider.url, tokens["refresh_token"])
    assert rotated.status_code == 200
    time.sleep(1.1)
    replay = refresh(provider.url, tokens["refresh_token"])
    assert replay.status_code == 400
    assert replay.json() == {"error": "invalid_grant",
                             "error_description": "the refresh token was already used; its grant is revoked"}
    after = refresh(provider.url, rotated.json()["refresh_token"])
    assert after.json() == {"error": "invalid_grant", "error_description": "the refresh token was revoked"}


def test_parallel_refresh_one_winner(provider):
    _, tokens = sign_in_and_exchange(provider.url)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: refresh(provider.url, tokens["refresh_token"]), range(4)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 400, 400, 400]
    winner = next(response for response in responses if response.status_code == 200)
    assert refresh(provider.url, winner.json()["refresh_token"]).status_code == 200


def test_refresh_scope_may_only_narrow(provider):
    _, tokens = sign_in_and_exchange(provider.url, scope="openid movieAPI offline_access")
    wider = refresh(provider.url, tokens["refresh_token"], scope="openid movieAPI email")
    assert wider.status_code == 400
    assert wider.json() == {"error": "invalid_scope",
                            "error_description": "scope 'email' was not granted with this refresh token"}
    narrower = refresh(provider.url, tokens["refresh_token"], scope="movieAPI")
    assert narrower.status_code == 200
    assert narrower.json()["scope"] == "movieAPI"
    assert "id_token" not in narrower.json()


def test_public_client_exchanges_without_secret(provider):
    browser = Browser(provider.url)
    verifier, challenge = pkce_pair()
    back = browser.sign_in("alice", "alice", client_id="spa_client", redirect_uri="http://127.0.0.1:9/spa",
                           scope="openid profile movieAPI", challenge=challenge)
    response = exchange(provider.url, query_of(back)["code"], verifier, redirect_uri="http://127.0.0.1:9/spa",
                        auth=None, client_id="spa_client")
    assert response.status_code == 200, response.text
    assert "refresh_token" not in response.json()


def test_wrong_password_and_unknown_user_look_alike(provider):
    pages = []
    for username, password in (("alice", "wrong"), ("nobody", "wrong")):
        browser = Browser(provider.url)
        login_page = browser.follow(browser.authorize())
        pages.append(browser.submit(login_page, username=username, password=password, action="login"))
    assert [page.status_code for page in pages] == [401, 401]
    for page in pages:
        assert '<p class="alert" role="alert">Invalid username or password.</p>' in page.text
        assert "Location" not in page.headers


def test_locked_account(start_provider):
    provider = start_provider(IDENTITY__LOGIN_THROTTLE__USER_DELAY_AFTER="2",
                              IDENTITY__LOGIN_THROTTLE__USER_LOCK_AFTER="3")
    browser = Browser(provider.url)
    login_page = browser.follow(browser.authorize())
    statuses = [browser.submit(login_page, username="bob", password="nope", action="login").status_code
                for _ in range(3)]
    assert statuses == [401, 401, 429]
    locked = browser.submit(login_page, username="bob", password="bob", action="login")
    assert locked.status_code == 429
    assert 0 < int(locked.headers["Retry-After"]) <= 900
    assert "Too many failed sign-ins. Try again in" in locked.text
    # An unknown username gets the same treatment after the same failures.
    other = Browser(provider.url)
    other_page = other.follow(other.authorize())
    other_statuses = [other.submit(other_page, username="ghost", password="nope", action="login").status_code
                      for _ in range(3)]
    assert other_statuses == [401, 401, 429]


def test_login_without_xsrf_token_rejected(provider):
    browser = Browser(provider.url)
    login_page = browser.follow(browser.authorize())
    fields = hidden_fields(login_page.text)
    fields.pop("_xsrf")
    response = browser.http.post(f"{provider.url}/account/login", allow_redirects=False, timeout=10,
                                 data={**fields, "username": "alice", "password": "alice"})
    assert response.status_code == 403


def test_login_page_headers(provider):
    browser = Browser(provider.url)
    login_page = browser.follow(browser.authorize())
    assert login_page.status_code == 200
    assert "frame-ancestors 'none'" in login_page.headers["Content-Security-Policy"]
    assert login_page.headers["X-Frame-Options"] == "DENY"
    assert login_page.headers["Referrer-Policy"] == "no-referrer"
    assert login_page.headers["Cache-Control"] == "no-store"


def test_session_cookie_flags_and_new_id_each_sign_in(provider):
    browser = Browser(provider.url)
    browser.sign_in("alice", "alice")
    first = browser.http.cookies.get("idp.session")
    login_page = browser.follow(browser.authorize(prompt="login"))
    resumed = browser.submit(login_page, username="alice", password="alice", action="login")
    set_cookie = resumed.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie
    assert "SameSite=Lax" in set_cookie
    assert "Secure" not in set_cookie
    assert browser.http.cookies.get("idp.session") != first


def test_existing_session_skips_login(provider):
    browser = Browser(provider.url)
    browser.sign_in("alice", "alice")
    again = browser.authorize()
    assert again.status_code == 302
    assert location_base(again) == WEB_REDIRECT
    assert "code" in query_of(again)


def test_prompt_none_without_session(provider):
    response = Browser(provider.url).authorize(prompt="none")
    assert response.status_code == 302
    assert location_base(response) == WEB_REDIRECT
    assert query_of(response) == {"error": "login_required", "error_description": "the user is not signed in",
                                  "state": "state-123", "iss": provider.url}


def test_max_age_zero_forces_login(provider):
    browser = Browser(provider.url)
    browser.sign_in("alice", "alice")
    time.sleep(1.1)
    response = browser.authorize(max_age="0")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/account/login?authz=")


def test_unregistered_redirect_uri_shows_page(provider):
    response = Browser(provider.url).authorize(redirect_uri="http://evil.example/cb")
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "the redirect_uri is missing or not registered for this client" in response.text


def test_plain_pkce_redirects_error(provider):
    response = Browser(provider.url).authorize(code_challenge_method="plain")
    assert response.status_code == 302
    assert query_of(response) == {"error": "invalid_request", "error_description": "code_challenge_method must be S256",
                                  "state": "state-123", "iss": provider.url}


def test_cancel_on_login_page(provider):
    browser = Browser(provider.url)
    login_page = browser.follow(browser.authorize())
    response = browser.submit(login_page, action="cancel")
    assert query_of(response)["error"] == "access_denied"


def test_consent_required_client(provider):
    browser = Browser(provider.url)
    consent_page = browser.follow(browser.sign_in("alice", "alice", client_id="consent_client",
                                                  redirect_uri="http://127.0.0.1:9/cb", scope="openid profile"))
    assert consent_page.status_code == 200
    assert "Allow access?" in consent_page.text

    none = browser.authorize(client_id="consent_client", redirect_uri="http://127.0.0.1:9/cb", scope="openid profile",
                             prompt="none")
    assert query_of(none)["error"] == "consent_required"

    denied = browser.submit(consent_page, decision="deny")
    assert query_of(denied)["error"] == "access_denied"

    consent_page = browser.follow(browser.authorize(client_id="consent_client", redirect_uri="http://127.0.0.1:9/cb",
                                                    scope="openid profile"))
    allowed = browser.follow(browser.submit(consent_page, decision="allow"))
    assert "code" in query_of(allowed)
    later = browser.authorize(client_id="consent_client", redirect_uri="http://127.0.0.1:9/cb", scope="openid profile")
    assert "code" in query_of(later)


def test_userinfo_errors(provider):
    url = f"{provider.url}/connect/userinfo"
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="identity_srv"'

    bad = requests.get(url, headers={"Authorization": "Bearer not.a.token"}, timeout=10)
    assert bad.status_code == 401
    assert bad.headers["WWW-Authenticate"] == ('Bearer realm="identity_srv", error="invalid_token", '
                                               'error_description="the access token is invalid or expired"')

    machine = client_credentials_token(provider.url)
    no_openid = requests.get(url, headers={"Authorization": f"Bearer {machine}"}, timeout=10)
    assert no_openid.status_code == 403
    assert no_openid.headers["WWW-Authenticate"] == (
        'Bearer realm="identity_srv", error="insufficient_scope", '
        'error_description="the access token lacks the openid scope", scope="openid"')


def test_userinfo_get_and_post_release_scoped_claims(provider):
    _, tokens = sign_in_and_exchange(provider.url, scope="openid email movieAPI")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    got = requests.get(f"{provider.url}/connect/userinfo", headers=headers, timeout=10)
    posted = requests.post(f"{provider.url}/connect/userinfo", headers=headers, timeout=10)
    assert got.json() == posted.json() == {"sub": "818727", "email": "AliceSmith@email.com", "email_verified": True}


def test_logout_unregistered_redirect_refused(provider):
    browser, tokens = sign_in_and_exchange(provider.url)
    response = browser.get(f"{provider.url}/connect/endsession", id_token_hint=tokens["id_token"],
                           post_logout_redirect_uri="http://evil.example/")
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "the post_logout_redirect_uri is not registered for this client" in response.text
    # The session is still there.
    assert "code" in query_of(browser.authorize(prompt="none"))


def test_logout_without_hint_needs_confirmation(provider):
    browser, tokens = sign_in_and_exchange(provider.url)
    page = browser.get(f"{provider.url}/connect/endsession")
    assert page.status_code == 200
    assert "Sign out?" in page.text
    forged = browser.http.post(f"{provider.url}/connect/endsession", data={"confirm": "1"}, allow_redirects=False,
                               timeout=10)
    assert forged.status_code == 403
    assert "code" in query_of(browser.authorize(prompt="none"))

    done = browser.submit(page)
    assert done.status_code == 200
    assert "You are signed out" in done.text
    assert query_of(browser.authorize(prompt="none"))["error"] == "login_required"
    assert refresh(provider.url, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_backchannel_logout_token_delivered(provider, receiver):
    browser = Browser(provider.url)
    verifier, challenge = pkce_pair()
    back = browser.sign_in("alice", "alice", client_id="spa_client", redirect_uri="http://127.0.0.1:9/spa",
                           scope="openid profile movieAPI", challenge=challenge)
    tokens = exchange(provider.url, query_of(back)["code"], verifier, redirect_uri="http://127.0.0.1:9/spa",
                      auth=None, client_id="spa_client").json()
    response = browser.get(f"{provider.url}/connect/endsession", id_token_hint=tokens["id_token"])
    assert response.status_code == 200
    assert len(receiver.bodies) == 1
    logout_token = receiver.bodies[0]["logout_token"][0]
    header = jwt.get_unverified_header(logout_token)
    key = jwt.PyJWK({key["kid"]: key for key in jwks_of(provider.url)["keys"]}[header["kid"]])
    claims = jwt.decode(logout_token, key, algorithms=[header["alg"]], audience="spa_client", issuer=provider.url)
    assert header["typ"] == "logout+jwt"
    assert claims["sub"] == "818727"
    assert claims["sid"] == jwt.decode(tokens["id_token"], options={"verify_signature": False})["sid"]
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert "nonce" not in claims


def test_refresh_token_introspected_and_revoked(provider):
    _, tokens = sign_in_and_exchange(provider.url)
    described = introspect(provider.url, tokens["refresh_token"])
    assert described["active"] is True
    assert described["token_type"] == "refresh_token"
    assert described["client_id"] == "movies_mvc_client"
    assert described["sub"] == "818727"
    assert described["scope"] == SCOPE

    foreign = requests.post(f"{provider.url}/connect/revocation", data={"token": tokens["refresh_token"]},
                            auth=("movieClient", "secret"), timeout=10)
    assert foreign.status_code == 400
    assert foreign.json() == {"error": "invalid_grant", "error_description": "the token was issued to another client"}

    revoked = requests.post(f"{provider.url}/connect/revocation", data={"token": tokens["refresh_token"]},
                            auth=("movies_mvc_client", "secret"), timeout=10)
    assert revoked.status_code == 200
    assert introspect(provider.url, tokens["refresh_token"]) == {"active": False}
    assert refresh(provider.url, tokens["refresh_token"]).json() == {
        "error": "invalid_grant", "error_description": "the refresh token was revoked"}


def test_repeated_login_field_rejected(provider):
    browser = Browser(provider.url)
    login_page = browser.follow(browser.authorize())
    fields = list(hidden_fields(login_page.text).items()) + [
        ("username", "alice"), ("username", "bob"), ("password", "bob"), ("action", "login")]
    response = browser.http.post(f"{provider.url}/account/login", data=fields, allow_redirects=False, timeout=10)
    assert response.status_code == 400
    assert "The form field username was sent twice." in response.text
    assert "idp.session" not in browser.http.cookies
