"""Store and provider outages: movies_srv returns 503 with a clear body, then recovers."""

from __future__ import annotations

import pytest

from servicekit.embedded import free_port, redis_server, secantus_server
from tests.movies.conftest import MOVIE, call, start_movies
from tests.support.processes import wait_for
from tests.support.test_issuer import TestIssuer

MONGO_DOWN = {"error": "temporarily_unavailable", "error_description": "mongodb is unavailable; retry shortly"}
REDIS_DOWN = {"error": "temporarily_unavailable", "error_description": "redis is unavailable; retry shortly"}


@pytest.mark.slow
def test_mongodb_down_then_back(issuer, redis_proc, tmp_path, alice):
    own_mongo = secantus_server(free_port(), tmp_path / "secantusdb")
    own_mongo.start(timeout=60)
    service = start_movies(redis_proc.url, own_mongo.url, issuer.url, tmp_path / "movies_srv.log",
                           MOVIES__MONGO__SERVER_SELECTION_TIMEOUT="1")
    try:
        movie = call(service.url, "POST", "/api/movies", alice, MOVIE).json()

        own_mongo.stop()
        for method, path, body in [("GET", "/api/movies", None), ("GET", f"/api/movies/{movie['id']}", None),
                                   ("POST", "/api/movies", MOVIE)]:
            response = call(service.url, method, path, alice, body)
            assert response.status == 503, (method, path)
            assert response.json() == MONGO_DOWN
            assert response.headers["Retry-After"] == "5"

        own_mongo.start(timeout=60)
        wait_for(lambda: call(service.url, "GET", "/api/movies", alice).status == 200, 20,
                 message="GET /api/movies 200 after MongoDB is back")
        assert call(service.url, "GET", f"/api/movies/{movie['id']}", alice).json() == movie
    finally:
        assert service.stop() == 0
        own_mongo.stop()
    log = service.log()
    assert "mongodb unavailable during GET /api/movies" in log
    assert "Traceback" not in log


@pytest.mark.slow
def test_mongodb_down_at_start_then_indexes(issuer, redis_proc, tmp_path, alice):
    port = free_port()
    own_mongo = secantus_server(port, tmp_path / "secantusdb")
    service = start_movies(redis_proc.url, own_mongo.url, issuer.url, tmp_path / "movies_srv.log",
                           MOVIES__MONGO__SERVER_SELECTION_TIMEOUT="1")
    try:
        assert call(service.url, "GET", "/api/movies", alice).json() == MONGO_DOWN
        own_mongo.start(timeout=60)
        wait_for(lambda: "movie indexes are in place" in service.log(), 20, message="indexes created")
        assert call(service.url, "GET", "/api/movies", alice).status == 200
    finally:
        assert service.stop() == 0
        own_mongo.stop()
    assert "creating the movie indexes failed, retrying in 5s" in service.log()


def test_redis_down_is_503(issuer, mongo_proc, tmp_path, alice):
    own_redis = redis_server(free_port(), tmp_path / "redis", persistent=False)
    own_redis.start()
    service = start_movies(own_redis.url, mongo_proc.url, issuer.url, tmp_path / "movies_srv.log",
                           MOVIES__REDIS__CONNECT_TIMEOUT="0.5", MOVIES__REDIS__COMMAND_TIMEOUT="0.5")
    try:
        assert call(service.url, "GET", "/api/movies", alice).status == 200
        own_redis.stop()
        # The deny list cannot be read, so even a token that was valid a moment ago is not accepted.
        response = call(service.url, "GET", "/api/movies", alice)
        assert response.status == 503
        assert response.json() == REDIS_DOWN
        own_redis.start()
        wait_for(lambda: call(service.url, "GET", "/api/movies", alice).status == 200, 20,
                 message="GET /api/movies 200 after Redis is back")
    finally:
        assert service.stop() == 0
        own_redis.stop()


def test_provider_down_is_503(redis_proc, mongo_proc, tmp_path):
    own_issuer = TestIssuer().start()
    token = own_issuer.sign(own_issuer.user_claims("818727"))
    own_issuer.stop()
    service = start_movies(redis_proc.url, mongo_proc.url, own_issuer.url, tmp_path / "movies_srv.log",
                           MOVIES__TOKENS__JWKS_REFETCH_INTERVAL="0.2")
    try:
        response = call(service.url, "GET", "/api/movies", token)
        assert response.status == 503
        assert response.json() == {
            "error": "temporarily_unavailable",
            "error_description": "the identity provider's signing keys are unavailable; retry shortly"}
        assert response.headers["Retry-After"] == "5"

        own_issuer.start()
        wait_for(lambda: call(service.url, "GET", "/api/movies", token).status == 200, 10,
                 message="GET /api/movies 200 after the provider is back")
    finally:
        assert service.stop() == 0
        own_issuer.stop()
