"""The demo routes end to end: a gateway process in front of real movies_srv processes.

Tokens come from the test issuer, which both services trust, so user tokens with
roles can be made without a browser sign-in. The gateway runs with the shipped
conf/routes.toml, its downstream pointed at the test's movies_srv through
GATEWAY_MOVIES_URL.
"""

from __future__ import annotations

import threading
import time
import urllib.parse

import pytest
from pymongo import MongoClient

from tests.support.processes import ServiceProcess, wait_for
from tests.support.test_issuer import TestIssuer

from .calls import call

DATABASE = "movies_gateway_test"
ALICE = "818727"
BOB = "88421113"
MOVIE = {"title": "The Matrix", "genre": "Science Fiction", "rating": 8.7, "releaseDate": "1999-03-31"}


def start_movies(redis_url: str, mongo_url: str, issuer: TestIssuer, log_path) -> ServiceProcess:
    env = {"REDIS_URL": redis_url, "MONGO_URL": mongo_url, "ISSUER": issuer.url, "LOG_LEVEL": "info",
           "MOVIES__MONGO__DATABASE": DATABASE}
    return ServiceProcess("movies_srv", env, log_path).start()


def start_gateway(redis_url: str, issuer: TestIssuer, movies_urls: list[str], log_path, **extra) -> ServiceProcess:
    env = {"REDIS_URL": redis_url, "ISSUER": issuer.url, "LOG_LEVEL": "info",
           "GATEWAY_MOVIES_URL": ",".join(movies_urls), **extra}
    return ServiceProcess("gateway_srv", env, log_path).start()


@pytest.fixture(scope="module")
def issuer():
    running = TestIssuer().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def movies(issuer, redis_proc, mongo_proc, tmp_path_factory):
    service = start_movies(redis_proc.url, mongo_proc.url, issuer, tmp_path_factory.mktemp("movies") / "movies.log")
    yield service
    assert service.stop() == 0


@pytest.fixture(scope="module")
def gateway(issuer, movies, redis_proc, tmp_path_factory):
    service = start_gateway(redis_proc.url, issuer, [movies.url], tmp_path_factory.mktemp("gw") / "gateway.log")
    yield service
    assert service.stop() == 0


@pytest.fixture
def empty_movies(mongo_proc):
    client = MongoClient(mongo_proc.url, serverSelectionTimeoutMS=5000)
    client[DATABASE]["movies"].delete_many({})
    yield
    client.close()


def user_token(issuer: TestIssuer, sub: str, roles: list[str]) -> str:
    return issuer.sign(issuer.user_claims(sub, roles=roles))


def test_every_demo_route_and_method(gateway, movies, issuer, empty_movies):
    alice = user_token(issuer, ALICE, ["user"])
    created = call(gateway.url, "POST", "/movies", alice, MOVIE)
    assert created.status == 201, created.body
    movie = created.json()
    assert movie["owner"] == ALICE
    path = f"/movies/{movie['id']}"

    listed = call(gateway.url, "GET", "/movies", alice)
    assert listed.status == 200
    assert [m["title"] for m in listed.json()] == ["The Matrix"]
    assert listed.headers["RateLimit-Policy"] == '"user";q=300;w=60, "client";q=600;w=60, "address";q=1200;w=60'

    shown = call(gateway.url, "GET", path, alice)
    assert shown.status == 200
    assert shown.json() == movie
    etag = shown.headers["ETag"]
    # HEAD and OPTIONS get whatever movies_srv itself returns for them.
    for method in ("HEAD", "OPTIONS"):
        through_gateway = call(gateway.url, method, path, alice)
        direct = call(movies.url, method, path.replace("/movies", "/api/movies"), alice)
        assert through_gateway.status == direct.status, method
        assert through_gateway.body == direct.body, method

    replaced = call(gateway.url, "PUT", path, alice, {**MOVIE, "rating": 9.0}, headers={"If-Match": etag})
    assert replaced.status == 200, replaced.body
    assert replaced.json()["rating"] == 9.0
    patched = call(gateway.url, "PATCH", path, alice, {"genre": "Action"})
    assert patched.status == 200, patched.body
    assert patched.json()["genre"] == "Action"

    deleted = call(gateway.url, "DELETE", path, alice)
    assert deleted.status == 204
    gone = call(gateway.url, "GET", path, alice)
    assert gone.status == 404
    assert "route" not in gone.json()


def test_created_location_resolves_through_gateway(gateway, issuer, empty_movies):
    alice = user_token(issuer, ALICE, ["user"])
    created = call(gateway.url, "POST", "/movies", alice, MOVIE)
    assert created.status == 201, created.body
    movie = created.json()
    assert created.headers["Location"] == f"movies/{movie['id']}"

    # A client resolves the reference against the URL it posted to (RFC 3986 §5.2).
    location = urllib.parse.urljoin(f"{gateway.url}/movies", created.headers["Location"])
    assert location == f"{gateway.url}/movies/{movie['id']}"
    shown = call(gateway.url, "GET", urllib.parse.urlsplit(location).path, alice)
    assert shown.status == 200
    assert shown.json() == movie


def test_machine_token_reads_but_may_not_write(gateway, issuer, empty_movies):
    machine = issuer.sign()
    assert call(gateway.url, "GET", "/movies", machine).status == 200
    rejected = call(gateway.url, "POST", "/movies", machine, MOVIE)
    # movies_srv's own 403 passes through the gateway unchanged.
    assert rejected.status == 403
    assert rejected.json()["error_description"] == "machine tokens (client_credentials) may only read movies"


def test_gateway_401_and_403_challenges(gateway, issuer, empty_movies):
    missing = call(gateway.url, "GET", "/movies")
    assert missing.status == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="gateway"'
    expired = call(gateway.url, "GET", "/movies/1", issuer.sign(issuer.claims(lifetime=-300)))
    assert expired.status == 401
    assert expired.headers["WWW-Authenticate"] == (
        'Bearer realm="gateway", error="invalid_token", error_description="the token has expired"')
    no_scope = call(gateway.url, "GET", "/movies", issuer.sign(issuer.claims(scope="openid")))
    assert no_scope.status == 403
    assert no_scope.headers["WWW-Authenticate"] == (
        'Bearer realm="gateway", error="insufficient_scope", '
        'error_description="the token lacks the scope movieAPI", scope="movieAPI"')


def test_user_with_two_roles_passes_admin_check(gateway, issuer, empty_movies):
    alice = user_token(issuer, ALICE, ["user"])
    movie = call(gateway.url, "POST", "/movies", alice, MOVIE).json()
    bob = user_token(issuer, BOB, ["user", "admin"])
    carol = user_token(issuer, "carol-1", ["user", "editor"])
    path = f"/movies/{movie['id']}"
    assert call(gateway.url, "DELETE", path, carol).status == 403
    assert call(gateway.url, "DELETE", path, bob).status == 204


def test_encoded_path_reaches_movies_as_sent(gateway, issuer, movies, empty_movies):
    alice = user_token(issuer, ALICE, ["user"])
    response = call(gateway.url, "GET", "/movies/a%2Fb%20c", alice)
    # movies_srv, not the gateway, rejects the id: the gateway's 404 would name a route.
    assert response.status in (400, 404)
    assert "route" not in response.json()
    # The access line is written after the response, so give it a moment.
    wait_for(lambda: "GET /api/movies/a%2Fb%20c " in movies.log(), 5, message="movies_srv's access line")


def test_movies_instance_stopped_mid_run(issuer, redis_proc, mongo_proc, tmp_path, empty_movies):
    first = start_movies(redis_proc.url, mongo_proc.url, issuer, tmp_path / "movies-1.log")
    second = start_movies(redis_proc.url, mongo_proc.url, issuer, tmp_path / "movies-2.log")
    gateway = start_gateway(redis_proc.url, issuer, [first.url, second.url], tmp_path / "gateway.log",
                            GATEWAY__PROXY__PROBE_INTERVAL="0.5")
    try:
        alice = user_token(issuer, ALICE, ["user"])
        movie = call(gateway.url, "POST", "/movies", alice, MOVIE).json()
        statuses: list[int] = []

        def worker(token: str) -> None:
            for _ in range(150):
                statuses.append(call(gateway.url, "GET", f"/movies/{movie['id']}", token).status)

        # One user per thread: 450 requests from one user would exceed the demo routes' per_user limit.
        tokens = [user_token(issuer, sub, ["user"]) for sub in (ALICE, BOB, "carol-1")]
        threads = [threading.Thread(target=worker, args=(token,)) for token in tokens]
        for thread in threads:
            thread.start()
        while len(statuses) < 120:
            time.sleep(0.01)
        second.stop()
        for thread in threads:
            thread.join(60)
        assert len(statuses) == 450
        assert statuses.count(200) == 450
        first_served = first.log().count(f"GET /api/movies/{movie['id']} 200")
        second_served = second.log().count(f"GET /api/movies/{movie['id']} 200")
        assert second_served >= 40
        # A request the stopping instance finished, but whose response was lost with
        # the connection, was retried on the other instance: at most one per worker.
        assert 450 - 3 <= first_served + second_served <= 450 + 3
    finally:
        gateway.stop()
        first.stop()
        second.stop()
