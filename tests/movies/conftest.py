"""movies_srv as a real process, pointed at a test issuer and the session stores.

One movies_srv process and one test issuer serve a whole test module; each test
starts with an empty movies collection and an empty Redis.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from pymongo import MongoClient

from tests.support.processes import ServiceProcess
from tests.support.test_issuer import TestIssuer

ALICE = "818727"
BOB = "88421113"
DATABASE = "movies_test"


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(base_url: str, method: str, path: str, token: str | None = None, body: Any = None,
         headers: dict[str, str] | None = None, raw_body: bytes | None = None) -> Response:
    """Send one request to `base_url` and return the response, whatever its status."""
    host_port = base_url.removeprefix("http://")
    connection = http.client.HTTPConnection(host_port, timeout=30)
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    payload = raw_body
    if body is not None:
        payload = json.dumps(body).encode("utf-8")
        all_headers.setdefault("Content-Type", "application/json")
    try:
        connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


def start_movies(redis_url: str, mongo_url: str, issuer_url: str, log_path, **settings: str) -> ServiceProcess:
    env = {"REDIS_URL": redis_url, "MONGO_URL": mongo_url, "ISSUER": issuer_url, "LOG_LEVEL": "info",
           "MOVIES__MONGO__DATABASE": DATABASE, **settings}
    return ServiceProcess("movies_srv", env, log_path).start()


@pytest.fixture(scope="module")
def issuer():
    issuer = TestIssuer().start()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="module")
def movies_service(issuer, redis_proc, mongo_proc, tmp_path_factory):
    service = start_movies(redis_proc.url, mongo_proc.url, issuer.url,
                           tmp_path_factory.mktemp("movies") / "movies_srv.log")
    yield service
    assert service.stop() == 0


@pytest.fixture
def movies_db(mongo_proc):
    """The service's database, emptied of movies; indexes are kept."""
    client = MongoClient(mongo_proc.url, serverSelectionTimeoutMS=5000)
    client[DATABASE]["movies"].delete_many({})
    yield client[DATABASE]
    client.close()


@pytest.fixture
def api(movies_service, movies_db, redis_proc):
    """Send a request to the module's movies_srv: api(method, path, token=..., body=...)."""
    client = redis.Redis.from_url(redis_proc.url)
    client.flushall()
    client.close()

    def send(method: str, path: str, token: str | None = None, body: Any = None, **kwargs: Any) -> Response:
        return call(movies_service.url, method, path, token, body, **kwargs)

    return send


@pytest.fixture
def alice(issuer) -> str:
    return issuer.sign(issuer.user_claims(ALICE, roles=["user"], name="Alice Smith"))


@pytest.fixture
def bob(issuer) -> str:
    """Bob has the admin role, as in the demo users."""
    return issuer.sign(issuer.user_claims(BOB, roles=["admin"], name="Bob Smith"))


@pytest.fixture
def machine(issuer) -> str:
    return issuer.sign(issuer.claims())


MOVIE = {"title": "The Matrix", "genre": "Science Fiction", "rating": 8.7, "releaseDate": "1999-03-31",
         "imageUrl": "https://image.tmdb.org/t/p/w500/f89U3ADr1oiB1s9GkdPOEpXUk5H.jpg"}
