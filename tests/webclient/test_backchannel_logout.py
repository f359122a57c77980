"""Back-channel logout at webclient_srv: the provider's logout tokens end sessions.

Logout tokens are signed by the test issuer that the page stack's webclient
trusts, and POSTed as the provider would (OpenID Connect Back-Channel Logout 1.0
§2.5). Every session is written with its own `sid`, and sub-wide logouts use
users of their own, so that the tests cannot end each other's sessions.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import secrets
import time
import urllib.parse

import pytest
import redis

from tests.support.test_issuer import BROWSER_CLIENT

from .browser import Browser, Page
from .conftest import SESSION_COOKIE, start_webclient_without_redis

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
PATH = "/backchannel-logout"


def logout_claims(stack, *, sid: str | None, sub: str | None = "backchannel-user", **changes) -> dict:
    now = int(time.time())
    claims = {"iss": stack.issuer.url, "aud": BROWSER_CLIENT, "iat": now, "exp": now + 120,
              "jti": secrets.token_urlsafe(16), "events": {LOGOUT_EVENT: {}}}
    if sid is not None:
        claims["sid"] = sid
    if sub is not None:
        claims["sub"] = sub
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def logout_token(stack, claims: dict, **header) -> str:
    return stack.issuer.sign(claims, header={"typ": "logout+jwt", **header})


def post_logout(url: str, token: str | None, *, content_type: str = "application/x-www-form-urlencoded",
                body: bytes | None = None, query: str = "") -> Page:
    """POST a logout token as the provider does: a form without cookies or XSRF token."""
    if body is None:
        body = urllib.parse.urlencode({"logout_token": token}).encode() if token is not None else b""
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=30)
    try:
        connection.request("POST", PATH + query, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return Page(response.status, response.headers, response.read().decode("utf-8", "replace"))
    finally:
        connection.close()


def new_sid() -> str:
    return secrets.token_urlsafe(12)


def test_logout_by_sid_ends_that_session_only(page_stack):
    sid, other_sid = new_sid(), new_sid()
    ended = page_stack.sign_in("backchannel-sid-user", ["user"], sid=sid)
    still_signed_in = page_stack.sign_in("backchannel-sid-user", ["user"], sid=other_sid)

    token = logout_token(page_stack, logout_claims(page_stack, sid=sid, sub="backchannel-sid-user"))
    response = post_logout(page_stack.webclient.url, token)

    assert response.status == 200
    assert response.body == ""
    assert response.headers["Cache-Control"] == "no-store"
    assert not page_stack.session_exists(ended)
    assert page_stack.session_exists(still_signed_in)


def test_ended_session_must_sign_in_again(page_stack):
    sid = new_sid()
    cookie = page_stack.sign_in("backchannel-page-user", ["user"], sid=sid)
    browser = Browser(page_stack.webclient.url, cookies={SESSION_COOKIE: cookie})
    assert browser.get("/claims").status == 200

    token = logout_token(page_stack, logout_claims(page_stack, sid=sid, sub=None))
    assert post_logout(page_stack.webclient.url, token).status == 200

    page = browser.get("/claims")
    assert page.status == 302
    assert page.location.startswith(f"{page_stack.issuer.url}/connect/authorize?")


def test_logout_by_sub_ends_user_sessions(page_stack):
    first = page_stack.sign_in("backchannel-sub-user", ["user"], sid=new_sid())
    second = page_stack.sign_in("backchannel-sub-user", ["user"], sid=new_sid())
    someone_else = page_stack.sign_in("backchannel-other-user", ["user"], sid=new_sid())

    claims = logout_claims(page_stack, sid=None, sub="backchannel-sub-user")
    response = post_logout(page_stack.webclient.url, logout_token(page_stack, claims))

    assert response.status == 200
    assert not page_stack.session_exists(first)
    assert not page_stack.session_exists(second)
    assert page_stack.session_exists(someone_else)


def test_sid_with_other_sub_ends_nothing(page_stack):
    sid = new_sid()
    cookie = page_stack.sign_in("backchannel-alice", ["user"], sid=sid)

    token = logout_token(page_stack, logout_claims(page_stack, sid=sid, sub="backchannel-mallory"))
    response = post_logout(page_stack.webclient.url, token)

    assert response.status == 200
    assert page_stack.session_exists(cookie)


def test_jti_remembered_while_token_is_accepted(page_stack):
    # iat 25 s ahead, within the 30 s leeway, and no exp: accepted until iat + 300 + 30.
    claims = logout_claims(page_stack, sid=new_sid(), exp=None)
    claims["iat"] += 25
    assert post_logout(page_stack.webclient.url, logout_token(page_stack, claims)).status == 200
    key = f"web:logout-jti:{hashlib.sha256(claims['jti'].encode()).hexdigest()}"
    assert redis.Redis.from_url(page_stack.redis_url).ttl(key) >= 350


def test_failed_logout_can_be_sent_again(page_stack):
    sid = new_sid()
    cookie = page_stack.sign_in("backchannel-retry-user", ["user"], sid=sid)
    token = logout_token(page_stack, logout_claims(page_stack, sid=sid, sub="backchannel-retry-user"))
    admin = redis.Redis.from_url(page_stack.redis_url)
    # Redis refuses the index read: the first delivery fails before any session ends.
    admin.execute_command("ACL", "SETUSER", "default", "-smembers")
    try:
        failed = post_logout(page_stack.webclient.url, token)
    finally:
        admin.execute_command("ACL", "SETUSER", "default", "+smembers")
    assert failed.status == 500
    assert page_stack.session_exists(cookie)

    again = post_logout(page_stack.webclient.url, token)

    assert again.status == 200
    assert not page_stack.session_exists(cookie)


def test_token_for_no_session_is_accepted(page_stack):
    token = logout_token(page_stack, logout_claims(page_stack, sid=new_sid()))
    response = post_logout(page_stack.webclient.url, token)
    assert response.status == 200


def test_replayed_token_is_rejected_and_ends_nothing(page_stack):
    token = logout_token(page_stack, logout_claims(page_stack, sid=None, sub="backchannel-replay-user"))
    first = page_stack.sign_in("backchannel-replay-user", ["user"], sid=new_sid())
    assert post_logout(page_stack.webclient.url, token).status == 200
    assert not page_stack.session_exists(first)
    signed_in_again = page_stack.sign_in("backchannel-replay-user", ["user"], sid=new_sid())

    response = post_logout(page_stack.webclient.url, token)

    assert response.status == 400
    assert json.loads(response.body)["error"] == "invalid_request"
    assert page_stack.session_exists(signed_in_again)


def invalid_tokens(stack, sid: str) -> dict[str, str]:
    """Tokens for `sid` that each break one rule of OpenID Connect Back-Channel Logout 1.0 §2.6."""
    def claims(**changes):
        return logout_claims(stack, sid=sid, **changes)

    valid = logout_token(stack, claims())
    header, payload, signature = valid.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    now = int(time.time())
    return {
        "bad-signature": f"{header}.{payload}.{flipped}",
        "alg-none": stack.issuer.sign_none(claims()),
        "hs256-with-public-key": stack.issuer.sign_hs256_with_public_key(claims()),
        "unknown-kid": logout_token(stack, claims(), kid="no-such-key"),
        "other-issuer": logout_token(stack, claims(iss="https://other.example")),
        "other-audience": logout_token(stack, claims(aud="movieClient")),
        "expired": logout_token(stack, claims(iat=now - 200, exp=now - 100)),
        "iat-too-old": logout_token(stack, claims(iat=now - 3600, exp=None)),
        "no-iat": logout_token(stack, claims(iat=None)),
        "no-jti": logout_token(stack, claims(jti=None)),
        "typ-access-token": logout_token(stack, claims(), typ="at+jwt"),
        "typ-jwt": logout_token(stack, claims(), typ="JWT"),
        "no-events": logout_token(stack, claims(events=None)),
        "events-as-list": logout_token(stack, claims(events=[LOGOUT_EVENT])),
        "other-event": logout_token(stack, claims(events={"https://example.com/other-event": {}})),
        "event-not-object": logout_token(stack, claims(events={LOGOUT_EVENT: "yes"})),
        "nonce": logout_token(stack, claims(nonce="n")),
        "no-sub-or-sid": logout_token(stack, logout_claims(stack, sid=None, sub=None)),
        "sid-number": logout_token(stack, {**claims(), "sid": 12345}),
        "sid-empty": logout_token(stack, {**claims(), "sid": ""}),
        "sub-number": logout_token(stack, claims(sub=818727)),
        "not-a-jwt": "not-a-jwt",
    }


CASES = ["bad-signature", "alg-none", "hs256-with-public-key", "unknown-kid", "other-issuer", "other-audience",
         "expired", "iat-too-old", "no-iat", "no-jti", "typ-access-token", "typ-jwt", "no-events",
         "events-as-list", "other-event", "event-not-object", "nonce", "no-sub-or-sid", "sid-number", "sid-empty",
         "sub-number", "not-a-jwt"]


@pytest.mark.parametrize("case", CASES)
def test_invalid_token_is_rejected_and_session_kept(page_stack, case):
    sid = new_sid()
    cookie = page_stack.sign_in("backchannel-user", ["user"], sid=sid)

    response = post_logout(page_stack.webclient.url, invalid_tokens(page_stack, sid)[case])

    assert response.status == 400
    assert json.loads(response.body)["error"] == "invalid_request"
    assert response.headers["Cache-Control"] == "no-store"
    assert page_stack.session_exists(cookie)


@pytest.mark.parametrize(("case", "request_args"), [
    pytest.param("missing", {"token": None}, id="missing"),
    pytest.param("twice", {"token": None, "body": b"logout_token=a.b.c&logout_token=a.b.c"}, id="twice"),
    pytest.param("json", {"token": None, "content_type": "application/json", "body": b'{"logout_token":"x"}'},
                 id="json-body"),
    pytest.param("query", {"token": "a.b.c", "query": "?logout_token=a.b.c"}, id="token-in-url"),
])
def test_malformed_request_is_rejected(page_stack, case, request_args):
    response = post_logout(page_stack.webclient.url, **request_args)
    assert response.status == 400
    assert json.loads(response.body)["error"] == "invalid_request"
    assert response.headers["Cache-Control"] == "no-store"


def test_get_is_not_allowed(page_stack):
    response = Browser(page_stack.webclient.url).get(PATH)
    assert response.status == 405
    assert response.headers["Allow"] == "POST"


def test_redis_down_gives_503(page_stack, tmp_path):
    webclient = start_webclient_without_redis(page_stack, tmp_path / "webclient.log")
    try:
        token = logout_token(page_stack, logout_claims(page_stack, sid=new_sid()))
        response = post_logout(webclient.url, token)
        assert response.status == 503
        assert json.loads(response.body)["error"] == "temporarily_unavailable"
        assert response.headers["Cache-Control"] == "no-store"
    finally:
        webclient.stop()
