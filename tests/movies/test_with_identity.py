"""movies_srv with a real identity_srv: a real client_credentials token, then revoked."""

from __future__ import annotations

import jwt

from tests.movies.conftest import MOVIE, call, start_movies
from tests.support.identity import (  # noqa: F401  (fixture)
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, basic_authorization, client_credentials_token, identity_service,
    post_form,
)


def test_real_token_reads_then_revoked(identity_service, store_env, tmp_path):
    movies = start_movies(store_env["REDIS_URL"], store_env["MONGO_URL"], identity_service.url,
                          tmp_path / "movies_srv.log")
    try:
        token = client_credentials_token(identity_service.url)
        claims = jwt.decode(token, options={"verify_signature": False})

        listing = call(movies.url, "GET", "/api/movies", token)
        assert listing.status == 200
        assert listing.json() == []

        identity = call(movies.url, "GET", "/api/identity", token)
        assert identity.status == 200
        assert identity.json() == claims
        assert identity.json()["sub"] == DEMO_CLIENT_ID

        # A client_credentials token is a machine token, which may only read.
        created = call(movies.url, "POST", "/api/movies", token, MOVIE)
        assert created.status == 403
        assert created.json()["error"] == "forbidden"

        status, _, body = post_form(f"{identity_service.url}/connect/revocation", {"token": token},
                                    {"Authorization": basic_authorization(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)})
        assert status == 200, body
        revoked = call(movies.url, "GET", "/api/movies", token)
        assert revoked.status == 401
        assert revoked.headers["WWW-Authenticate"] == (
            'Bearer realm="movies", error="invalid_token", error_description="the token has been revoked"')
    finally:
        assert movies.stop() == 0
    assert token not in movies.log()


def test_real_token_crud_when_machines_may_write(identity_service, store_env, tmp_path):
    movies = start_movies(store_env["REDIS_URL"], store_env["MONGO_URL"], identity_service.url,
                          tmp_path / "movies_srv.log", MOVIES__ACCESS__MACHINE_TOKENS_MAY_WRITE="true")
    try:
        token = client_credentials_token(identity_service.url)
        created = call(movies.url, "POST", "/api/movies", token, MOVIE)
        assert created.status == 201
        movie = created.json()
        assert movie["owner"] == DEMO_CLIENT_ID
        path = f"/api/movies/{movie['id']}"

        assert call(movies.url, "GET", path, token).json() == movie
        replaced = call(movies.url, "PUT", path, token, {**MOVIE, "rating": 9.0}, headers={"If-Match": '"1"'})
        assert replaced.status == 200
        assert replaced.json()["rating"] == 9.0
        patched = call(movies.url, "PATCH", path, token, {"genre": "Action"}, headers={"If-Match": '"2"'})
        assert patched.status == 200
        assert patched.json()["version"] == 3
        assert call(movies.url, "GET", "/api/movies", token).json() == [patched.json()]
        assert call(movies.url, "DELETE", path, token, headers={"If-Match": '"3"'}).status == 204
        assert call(movies.url, "GET", path, token).status == 404
    finally:
        assert movies.stop() == 0
    assert "POST /api/movies 201" in movies.log()
    assert f"client={DEMO_CLIENT_ID} sub={DEMO_CLIENT_ID}" in movies.log()
