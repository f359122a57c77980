"""PKCE downgrade and misuse (RFC 9700 §4.8, §2.1.1; RFC 7636 §4.4.1, §4.6)."""

from __future__ import annotations

import pytest

from tests.signin.conftest import pkce_pair, query_of

from .conftest import (
    PUBLIC_CLIENT,
    PUBLIC_REDIRECT,
    Attacker,
    assert_oauth_error,
    exchange,
)


def error_redirect(stack, response) -> dict[str, str]:
    assert response.status_code == 302
    assert response.headers["Location"].startswith(stack.redirect_uri + "?")
    return query_of(response)


def test_authorize_without_challenge(stack):
    # RFC 9700 §2.1.1: PKCE is required, so a request without code_challenge is invalid_request.
    response = Attacker(stack).authorize(code_challenge=None, code_challenge_method=None)
    query = error_redirect(stack, response)
    assert query["error"] == "invalid_request"
    assert query["state"] == "state-123"
    assert query["iss"] == stack.issuer


def test_plain_method_refused(stack):
    # RFC 9700 §2.1.1: only S256; `plain` would hand the verifier to whoever reads the request.
    query = error_redirect(stack, Attacker(stack).authorize(code_challenge_method="plain"))
    assert query["error"] == "invalid_request"
    assert query["error_description"] == "code_challenge_method must be S256"


def test_challenge_without_method_refused(stack):
    # RFC 7636 §4.3: the method defaults to plain, which this provider does not allow.
    query = error_redirect(stack, Attacker(stack).authorize(code_challenge_method=None))
    assert query["error"] == "invalid_request"


@pytest.mark.parametrize("challenge", ["short", "x" * 129, "a" * 42 + "!"], ids=["short", "long", "bad-char"])
def test_malformed_challenge_refused(stack, challenge):
    # RFC 7636 §4.2: an S256 challenge is 43 base64url characters.
    query = error_redirect(stack, Attacker(stack).authorize(code_challenge=challenge))
    assert query["error"] == "invalid_request"


def test_token_request_without_verifier(stack):
    # RFC 9700 §4.8: a code issued with a challenge must not be redeemed without its verifier.
    code, _ = Attacker(stack).code()
    assert_oauth_error(exchange(stack, code, None), 400, "invalid_request")


def test_token_request_with_challenge_as_verifier(stack):
    # RFC 7636 §4.6: the server hashes the verifier; sending the (public) challenge must fail.
    _, challenge = pkce_pair()
    back = Attacker(stack).sign_in(challenge=challenge)
    assert_oauth_error(exchange(stack, query_of(back)["code"], challenge), 400, "invalid_grant")


def test_public_client_without_verifier(stack):
    # RFC 9700 §2.1.1: a public client has only PKCE to bind the code; no verifier, no tokens.
    _, challenge = pkce_pair()
    back = Attacker(stack).sign_in(client_id=PUBLIC_CLIENT, redirect_uri=PUBLIC_REDIRECT,
                                   scope="openid profile movieAPI", challenge=challenge)
    code = query_of(back)["code"]
    response = exchange(stack, code, None, redirect_uri=PUBLIC_REDIRECT, auth=None, client_id=PUBLIC_CLIENT)
    assert_oauth_error(response, 400, "invalid_request")
