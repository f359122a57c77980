"""Authorization request checks: which errors redirect, which show a page, and what they carry."""

from __future__ import annotations

from pathlib import Path

import pytest

from identity_srv.authorization import (
    AuthorizationError, AuthorizationRequest, InvalidAuthorizationTarget, parse_authorization_request,
    redirect_with,
)
from identity_srv.clients import load_registry

ROOT = Path(__file__).resolve().parents[2]
REDIRECT = "http://localhost:5002/signin-oidc"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.fixture(scope="module")
def registry():
    return load_registry(ROOT / "conf" / "clients.toml")


def request_args(**overrides):
    args = {
        "client_id": "movies_mvc_client", "redirect_uri": REDIRECT, "response_type": "code",
        "scope": "openid profile movieAPI offline_access", "state": "st-1", "nonce": "n-1",
        "code_challenge": CHALLENGE, "code_challenge_method": "S256",
    }
    args.update(overrides)
    return {name: (value if isinstance(value, list) else [value]) for name, value in args.items()
            if value is not None}


def test_valid_request(registry):
    request = parse_authorization_request(registry, request_args(prompt="login", max_age="300",
                                                                 login_hint="alice"))
    assert request == AuthorizationRequest(
        client_id="movies_mvc_client", redirect_uri=REDIRECT,
        scopes=("openid", "profile", "movieAPI", "offline_access"), code_challenge=CHALLENGE,
        state="st-1", nonce="n-1", prompt=("login",), max_age=300, login_hint="alice")


def test_request_round_trips_through_dict(registry):
    request = parse_authorization_request(registry, request_args(prompt="login consent"))
    assert AuthorizationRequest.from_dict(request.to_dict()) == request


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"client_id": None}, "the client_id is missing or unknown", id="client-missing"),
        pytest.param({"client_id": "evil"}, "the client_id is missing or unknown", id="client-unknown"),
        pytest.param({"redirect_uri": None}, "the redirect_uri is missing or not registered for this client",
                     id="redirect-missing"),
        pytest.param({"redirect_uri": REDIRECT + "/"}, "the redirect_uri is missing or not registered for this client",
                     id="redirect-trailing-slash"),
        pytest.param({"redirect_uri": REDIRECT.upper()}, "the redirect_uri is missing or not registered for this client",
                     id="redirect-changed-case"),
        pytest.param({"redirect_uri": REDIRECT + "?next=x"},
                     "the redirect_uri is missing or not registered for this client", id="redirect-extra-query"),
        pytest.param({"redirect_uri": REDIRECT + "#f"}, "the redirect_uri is missing or not registered for this client",
                     id="redirect-fragment"),
        pytest.param({"redirect_uri": "http://localhost:5002.evil.example/signin-oidc"},
                     "the redirect_uri is missing or not registered for this client", id="redirect-other-host"),
        pytest.param({"redirect_uri": [REDIRECT, "http://evil.example/"]},
                     "client_id and redirect_uri must each appear once", id="redirect-repeated"),
        pytest.param({"client_id": ["movies_mvc_client", "movieClient"]},
                     "client_id and redirect_uri must each appear once", id="client-repeated"),
    ],
)
def test_untrusted_target_never_redirects(registry, overrides, message):
    with pytest.raises(InvalidAuthorizationTarget) as caught:
        parse_authorization_request(registry, request_args(**overrides))
    assert caught.value.description == message


@pytest.mark.parametrize(
    ("overrides", "error", "description"),
    [
        pytest.param({"response_type": "token"}, "unsupported_response_type", "response_type must be code",
                     id="implicit"),
        pytest.param({"response_type": "code id_token"}, "unsupported_response_type", "response_type must be code",
                     id="hybrid"),
        pytest.param({"response_type": None}, "unsupported_response_type", "response_type must be code",
                     id="response-type-missing"),
        pytest.param({"code_challenge": None, "code_challenge_method": None}, "invalid_request",
                     "code_challenge is required (PKCE with S256)", id="pkce-missing"),
        pytest.param({"code_challenge_method": "plain"}, "invalid_request", "code_challenge_method must be S256",
                     id="pkce-plain"),
        pytest.param({"code_challenge_method": None}, "invalid_request", "code_challenge_method must be S256",
                     id="pkce-method-missing-means-plain"),
        pytest.param({"code_challenge": "short"}, "invalid_request", "code_challenge must be 43 base64url characters",
                     id="pkce-challenge-malformed"),
        pytest.param({"scope": None}, "invalid_scope", "scope is missing", id="scope-missing"),
        pytest.param({"scope": "openid admin"}, "invalid_scope", "scope admin is not allowed for this client",
                     id="scope-not-granted"),
        pytest.param({"scope": "openid  profile"}, "invalid_scope",
                     "scope must be scope names separated by single spaces", id="scope-double-space"),
        pytest.param({"prompt": "none login"}, "invalid_request", "prompt=none cannot be combined with other values",
                     id="prompt-none-combined"),
        pytest.param({"prompt": "sometimes"}, "invalid_request", "prompt value sometimes is not supported",
                     id="prompt-unknown"),
        pytest.param({"max_age": "-1"}, "invalid_request", "max_age must be a whole number of seconds",
                     id="max-age-negative"),
        pytest.param({"max_age": "1e3"}, "invalid_request", "max_age must be a whole number of seconds",
                     id="max-age-not-integer"),
        pytest.param({"state": ["a", "b"]}, "invalid_request", "parameter state is repeated", id="state-repeated"),
        pytest.param({"request": "eyJ..."}, "request_not_supported", "the request parameter is not supported",
                     id="request-object"),
        pytest.param({"request_uri": "https://x"}, "request_uri_not_supported",
                     "the request_uri parameter is not supported", id="request-uri"),
        pytest.param({"response_mode": "fragment"}, "invalid_request", "response_mode must be query",
                     id="response-mode-fragment"),
    ],
)
def test_errors_redirect_with_state(registry, overrides, error, description):
    with pytest.raises(AuthorizationError) as caught:
        parse_authorization_request(registry, request_args(**overrides))
    assert caught.value.error == error
    assert caught.value.description == description
    assert caught.value.redirect_uri == REDIRECT
    expected_state = None if "state" in overrides else "st-1"
    assert caught.value.state == expected_state


def test_machine_client_cannot_use_code_flow(registry):
    # movieClient has no redirect URI, so its request fails as an untrusted target.
    with pytest.raises(InvalidAuthorizationTarget):
        parse_authorization_request(registry, request_args(client_id="movieClient"))


def test_empty_parameter_counts_as_missing(registry):
    request = parse_authorization_request(registry, request_args(nonce="", prompt=""))
    assert request.nonce is None
    assert request.prompt == ()


def test_redirect_with_keeps_registered_query():
    assert redirect_with("https://app.example/cb?tenant=1", {"code": "c", "state": None, "iss": "http://i"}) == \
        "https://app.example/cb?tenant=1&code=c&iss=http%3A%2F%2Fi"
