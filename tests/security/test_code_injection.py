"""Authorization code injection and replay (RFC 9700 §4.5, RFC 6749 §4.1.3, §10.5)."""

from __future__ import annotations

from .conftest import (
    BROWSER_CLIENT,
    DEMO_SECRET,
    OTHER_CLIENT,
    OTHER_REDIRECT,
    Attacker,
    assert_oauth_error,
    exchange,
    introspection,
)


def test_code_of_victim_redeemed_by_other_client(stack):
    # RFC 9700 §4.5 / RFC 6749 §4.1.3: a code is bound to the client it was issued to.
    code, verifier = Attacker(stack).code()
    response = exchange(stack, code, verifier, redirect_uri=OTHER_REDIRECT, auth=(OTHER_CLIENT, DEMO_SECRET))
    assert_oauth_error(response, 400, "invalid_grant")


def test_injected_code_without_victims_verifier(stack):
    # RFC 9700 §4.5: PKCE stops a stolen code injected into another session.
    code, _ = Attacker(stack).code()
    _, attacker_verifier = Attacker(stack).code()
    assert_oauth_error(exchange(stack, code, attacker_verifier), 400, "invalid_grant")


def test_replayed_code_revokes_first_tokens(stack):
    # RFC 6749 §4.1.2 and RFC 9700 §4.5: a second use is refused and revokes what the first one got.
    code, verifier = Attacker(stack).code()
    first = exchange(stack, code, verifier)
    assert first.status_code == 200
    second = exchange(stack, code, verifier)
    assert_oauth_error(second, 400, "invalid_grant")
    assert introspection(stack, first.json()["access_token"]) == {"active": False}
    assert introspection(stack, first.json()["refresh_token"]) == {"active": False}


def test_code_with_other_redirect_uri(stack):
    # RFC 6749 §4.1.3: redirect_uri must be identical to the one in the authorization request.
    code, verifier = Attacker(stack).code()
    response = exchange(stack, code, verifier, redirect_uri=stack.redirect_uri + "?x=1")
    assert_oauth_error(response, 400, "invalid_grant")


def test_guessed_code_rejected(stack):
    # RFC 6749 §10.10: codes are unguessable, a made-up one is invalid_grant.
    assert_oauth_error(exchange(stack, "A" * 43, "B" * 43), 400, "invalid_grant")


def test_code_with_wrong_client_secret(stack):
    # RFC 6749 §5.2: a confidential client that fails authentication gets 401 invalid_client.
    code, verifier = Attacker(stack).code()
    response = exchange(stack, code, verifier, auth=(BROWSER_CLIENT, "not-the-secret"))
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    # The code still works for its real owner afterwards.
    assert exchange(stack, code, verifier).status_code == 200
