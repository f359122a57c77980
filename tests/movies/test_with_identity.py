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
