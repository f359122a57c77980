"""Refresh token replay and theft (RFC 9700 §4.14, RFC 6749 §6, §10.4)."""

from __future__ import annotations

import time

import requests

from .conftest import (
    BROWSER_CLIENT,
    DEMO_SECRET,
    OTHER_CLIENT,
    assert_oauth_error,
    introspection,
    signed_in_tokens,
    token_request,
)

# identity_srv's default signin.refresh_reuse_grace, in seconds: a rotated token
# presented again within it (a client's retry) is refused without revoking the family.
REUSE_GRACE = 2.0
# A replay this long after the rotation is past the grace, with room for the
# round trips of the test itself.
PAST_GRACE = REUSE_GRACE + 0.3


def refresh(stack, token: str, auth=(BROWSER_CLIENT, DEMO_SECRET), **extra) -> requests.Response:
    return token_request(stack, {"grant_type": "refresh_token", "refresh_token": token, **extra}, auth)


def test_rotation_issues_new_token(stack):
    # RFC 9700 §4.14: refresh token rotation, each use returns a new refresh token.
    _, tokens = signed_in_tokens(stack)
    rotated = refresh(stack, tokens["refresh_token"])
    assert rotated.status_code == 200
    assert rotated.headers["Cache-Control"] == "no-store"
    assert rotated.json()["refresh_token"] != tokens["refresh_token"]


def test_replay_after_rotation_revokes_family(stack):
    # RFC 9700 §4.14: a rotated token used again means theft, so the whole family is revoked.
    _, tokens = signed_in_tokens(stack)
    rotated = refresh(stack, tokens["refresh_token"]).json()
    time.sleep(PAST_GRACE)
    assert_oauth_error(refresh(stack, tokens["refresh_token"]), 400, "invalid_grant")
    assert_oauth_error(refresh(stack, rotated["refresh_token"]), 400, "invalid_grant")
    assert introspection(stack, rotated["refresh_token"]) == {"active": False}


def test_replay_within_grace_keeps_family(stack):
    # RFC 9700 §4.14 allows a short window for a client's retry; the replay itself still gets no tokens.
    _, tokens = signed_in_tokens(stack)
    rotated = refresh(stack, tokens["refresh_token"]).json()
    assert_oauth_error(refresh(stack, tokens["refresh_token"]), 400, "invalid_grant")
    assert refresh(stack, rotated["refresh_token"]).status_code == 200


def test_token_of_other_client(stack):
    # RFC 6749 §6: a refresh token is bound to its client; another client gets invalid_grant.
    _, tokens = signed_in_tokens(stack)
    assert_oauth_error(refresh(stack, tokens["refresh_token"], auth=(OTHER_CLIENT, DEMO_SECRET)), 400,
                       "invalid_grant")
    assert refresh(stack, tokens["refresh_token"]).status_code == 200


def test_revoked_token_refused(stack):
    # RFC 7009 §2.2: after revocation the token is invalid at once.
    _, tokens = signed_in_tokens(stack)
    revoked = requests.post(f"{stack.issuer}/connect/revocation", data={"token": tokens["refresh_token"]},
                            auth=(BROWSER_CLIENT, DEMO_SECRET), timeout=15)
    assert revoked.status_code == 200
    assert_oauth_error(refresh(stack, tokens["refresh_token"]), 400, "invalid_grant")


def test_tampered_token_refused(stack):
    # RFC 6749 §10.4: a changed character makes the token invalid_grant, not an error page.
    _, tokens = signed_in_tokens(stack)
    token = tokens["refresh_token"]
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert_oauth_error(refresh(stack, tampered), 400, "invalid_grant")


def test_scope_widening_refused(stack):
    # RFC 6749 §6: the new scope must not include any scope not originally granted.
    _, tokens = signed_in_tokens(stack)
    assert_oauth_error(refresh(stack, tokens["refresh_token"], scope="openid movieAPI admin"), 400, "invalid_scope")


def test_parallel_replay_one_winner(stack):
    # RFC 9700 §4.14: racing uses of one token yield one new token, not several.
    import concurrent.futures

    _, tokens = signed_in_tokens(stack)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: refresh(stack, tokens["refresh_token"]), range(4)))
    assert sorted(response.status_code for response in responses) == [200, 400, 400, 400]
