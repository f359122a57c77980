"""Each token check of movies_srv failing over HTTP, with a token crafted to fail it."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio

from servicekit import denylist
from tests.movies.conftest import ALICE


def now() -> int:
    return int(time.time())


CRAFTED = [
    ("expired", lambda i: i.sign(i.claims(exp=now() - 3600, iat=now() - 7200, nbf=now() - 7200)),
     "the token has expired"),
    ("not_yet_valid", lambda i: i.sign(i.claims(nbf=now() + 3600)), "the token is not valid yet"),
    ("wrong_issuer", lambda i: i.sign(i.claims(iss="http://127.0.0.1:1")), "the token's issuer is not accepted"),
    ("wrong_audience", lambda i: i.sign(i.claims(aud="otherAPI")),
     "the token's audience does not include movieAPI"),
    ("alg_none", lambda i: i.sign_none(), "the token's algorithm is not accepted"),
    ("hs256_with_public_key", lambda i: i.sign_hs256_with_public_key(), "the token's algorithm is not accepted"),
    ("unknown_kid", lambda i: i.sign(header={"kid": "not-published"}), "the token's signing key is unknown"),
    ("wrong_typ", lambda i: i.sign(header={"typ": "JWT"}), "the token is not an access token (typ must be at+jwt)"),
    ("key_with_wrong_alg", lambda i: i.sign(kid="ec-1", header={"alg": "RS256"}),
     "the token's algorithm does not match its key"),
    ("null_exp", lambda i: i.sign(i.claims(exp=None)), "the token has no exp claim"),
]


@pytest.mark.parametrize("build,description", [case[1:] for case in CRAFTED], ids=[case[0] for case in CRAFTED])
@pytest.mark.parametrize("path", ["/api/movies", "/api/identity"])
def test_crafted_token_is_401(api, issuer, build, description, path):
    response = api("GET", path, build(issuer))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="movies", error="invalid_token", error_description="{description}"')
    assert response.json() == {"error": "invalid_token", "error_description": description}


def test_revoked_jti_is_401(api, issuer, redis_proc):
    claims = issuer.user_claims(ALICE)
    token = issuer.sign(claims)
    assert api("GET", "/api/movies", token).status == 200

    asyncio.run(_revoke(redis.asyncio.Redis.from_url(redis_proc.url), claims))
    response = api("GET", "/api/movies", token)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="movies", error="invalid_token", error_description="the token has been revoked"')


async def _revoke(client, claims) -> None:
    await denylist.revoke(client, claims["jti"], claims["exp"])
    await client.aclose()


def test_es256_token_accepted(api, issuer):
    assert api("GET", "/api/movies", issuer.sign(issuer.user_claims(ALICE), kid="ec-1")).status == 200


def test_no_token_is_401_without_error(api):
    response = api("GET", "/api/movies")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="movies"'
    assert response.json() == {"error": "unauthorized", "error_description": "a bearer access token is required"}


def test_token_in_query_is_400(api, issuer):
    response = api("GET", f"/api/movies?access_token={issuer.sign()}")
    assert response.status == 400
    assert response.json()["error"] == "invalid_request"
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="movies", error="invalid_request", error_description="send the access token in the '
        'Authorization header, not in the URL or the body"')


def test_missing_scope_is_403(api, issuer):
    response = api("GET", "/api/movies", issuer.sign(issuer.user_claims(ALICE, scope="openid profile")))
    assert response.status == 403
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="movies", error="insufficient_scope", '
        'error_description="the token lacks the scope movieAPI", scope="movieAPI"')


def test_unknown_client_is_403(api, issuer):
    response = api("GET", "/api/movies", issuer.sign(issuer.claims(client_id="someOtherClient")))
    assert response.status == 403
    assert response.json() == {
        "error": "insufficient_scope",
        "error_description": "the token's client_id claim does not hold one of the accepted values"}


def test_token_never_logged(api, issuer, movies_service):
    token = issuer.sign(issuer.claims(exp=now() - 3600, iat=now() - 7200, nbf=now() - 7200))
    assert api("GET", "/api/movies", token).status == 401
    log = movies_service.log()
    assert token.split(".")[2] not in log
    assert "GET /api/movies 401" in log


def test_unknown_kid_flood_costs_one_fetch(api, issuer, alice):
    assert api("GET", "/api/movies", alice).status == 200
    before = issuer.jwks_requests
    for index in range(30):
        response = api("GET", "/api/movies", issuer.sign(header={"kid": f"made-up-{index}"}))
        assert response.status == 401
    # The refetch interval is 30 s by default: the first made-up kid may cause one
    # fetch, the rest none.
    assert issuer.jwks_requests - before <= 1
