"""Redis and MongoDB stopped and restarted under traffic, with the whole stack running.

While a store is down, requests that need it get 503. Every service recovers
by itself when the store is back, and what existed before (a provider session, a
refresh token, a web session, a movie) still works after it. Redis runs with its
append-only file on, as SECURITY.md asks for production. A refresh token kept
across a MongoDB outage at the provider is covered in tests/signin/test_store_outage.py.
"""

from __future__ import annotations

import pytest
import requests

from servicekit.embedded import free_port, redis_server, secantus_server
from tests.security.conftest import (
    BROWSER_CLIENT,
    DEMO_SECRET,
    MACHINE_CLIENT,
    Attacker,
    Stack,
    exchange,
    introspection,
    running_stack,
    webclient_callback,
)
from tests.signin.conftest import pkce_pair, query_of
from tests.support.processes import get_status, wait_for

from .conftest import Traffic

IDENTITY_DATABASE = "identity_faults"
MOVIES_DATABASE = "movies_faults"


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fault_stores")
    redis = redis_server(free_port(), folder / "redis", persistent=True)
    mongo = secantus_server(free_port(), folder / "mongo")
    redis.start()
    mongo.start(timeout=60)
    yield redis, mongo
    redis.stop()
    mongo.stop()


@pytest.fixture(scope="module")
def fault_stack(stores, tmp_path_factory):
    redis, mongo = stores
    with running_stack(tmp_path_factory.mktemp("fault_stack"), redis.url, mongo.url,
                       (IDENTITY_DATABASE, MOVIES_DATABASE), mongo_timeout="0.5") as running:
        yield running


def wait_all_ready(stack: Stack) -> None:
    for service in stack.services():
        url = f"{service.url}/readyz"
        wait_for(lambda url=url: get_status(url)[0] == 200, 30, message=f"{service.package} ready")


def machine_headers(stack: Stack) -> dict[str, str]:
    response = requests.post(f"{stack.issuer}/connect/token", data={"grant_type": "client_credentials"},
                             auth=(MACHINE_CLIENT, DEMO_SECRET), timeout=15)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def wait_until_serving(stack: Stack, headers: dict[str, str]) -> None:
    """Wait until every request of the background traffic returns 200.

    An earlier test's outage can leave a gateway circuit open or a pool
    reconnecting for a few seconds, so the "before" phase waits for a healthy stack.
    """
    wait_all_ready(stack)
    for name, call in traffic_for(stack, headers).calls.items():
        wait_for(lambda call=call: call() == 200, 30, interval=0.5, message=f"{name} returning 200")


def traffic_for(stack: Stack, headers: dict[str, str]) -> Traffic:
    def token() -> int:
        return requests.post(f"{stack.issuer}/connect/token", data={"grant_type": "client_credentials"},
                             auth=(MACHINE_CLIENT, DEMO_SECRET), timeout=15).status_code

    def movies() -> int:
        return requests.get(f"{stack.movies.url}/api/movies", headers=headers, timeout=15).status_code

    def gateway() -> int:
        return requests.get(f"{stack.gateway.url}/movies", headers=headers, timeout=15).status_code

    return Traffic({"token": token, "movies": movies, "gateway": gateway})


def test_redis_restart_keeps_sessions_and_tokens(fault_stack, stores):
    redis, _ = stores
    stack = fault_stack
    browser = Attacker(stack)
    code, verifier = browser.code()
    tokens = exchange(stack, code, verifier).json()
    web = Attacker(stack)
    web.follow(webclient_callback(stack, web))
    headers = machine_headers(stack)
    wait_until_serving(stack, headers)
    traffic = traffic_for(stack, headers).start()
    try:
        wait_for(lambda: traffic.total("before") >= 15, 10, message="traffic before the outage")
        traffic.next_phase("down")
        redis.stop()
        # Requests that need Redis get 503 while it is down, and none gets 500.
        token = requests.post(f"{stack.issuer}/connect/token", timeout=15, auth=(BROWSER_CLIENT, DEMO_SECRET),
                              data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
        assert token.status_code == 503
        assert token.json()["error"] == "temporarily_unavailable"
        assert requests.get(f"{stack.movies.url}/api/movies", headers=headers, timeout=15).status_code == 503
        assert requests.get(f"{stack.gateway.url}/movies", headers=headers, timeout=15).status_code == 503
        assert web.get(f"{stack.webclient_url}/movies").status_code == 503
        wait_for(lambda: traffic.statuses("down"), 10, message="traffic during the outage")

        redis.start()
        traffic.phase = "after"
        wait_all_ready(stack)
        wait_for(lambda: traffic.statuses("after") == {200}, 30, interval=0.5, message="traffic recovered")
    finally:
        traffic.stop()

    assert traffic.statuses("before") == {200}
    assert traffic.statuses("down") <= {200, 503}
    assert 503 in traffic.statuses("down")
    # The provider session, the refresh token and the web session from before the outage still work.
    assert "code" in browser.authorize(prompt="none").headers["Location"]
    assert introspection(stack, tokens["refresh_token"])["active"] is True
    refreshed = requests.post(f"{stack.issuer}/connect/token", auth=(BROWSER_CLIENT, DEMO_SECRET), timeout=15,
                              data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    assert web.get(f"{stack.webclient_url}/claims").status_code == 200


def test_mongo_restart_keeps_movies(fault_stack, stores):
    _, mongo = stores
    stack = fault_stack
    browser = Attacker(stack)
    verifier, challenge = pkce_pair()
    back = browser.sign_in("bob", "bob", challenge=challenge)
    bob = exchange(stack, query_of(back)["code"], verifier).json()
    bob_headers = {"Authorization": f"Bearer {bob['access_token']}"}
    created = requests.post(f"{stack.gateway.url}/movies", headers=bob_headers, timeout=15, json={
        "title": "Kept across an outage", "genre": "Drama", "rating": 6, "releaseDate": "1999-09-09"})
    assert created.status_code == 201, created.text
    movie_id = created.json()["id"]
    headers = machine_headers(stack)
    wait_until_serving(stack, headers)
    traffic = traffic_for(stack, headers).start()
    try:
        wait_for(lambda: traffic.total("before") >= 15, 10, message="traffic before the outage")
        traffic.next_phase("down")
        mongo.stop()
        assert requests.get(f"{stack.movies.url}/api/movies", headers=headers, timeout=15).status_code == 503
        assert requests.get(f"{stack.gateway.url}/movies/{movie_id}", headers=headers, timeout=15).status_code == 503
        # Sign-in needs the user store, so the login page returns 503, not 500.
        login = Attacker(stack)
        login_page = login.follow(login.authorize())
        assert login.submit(login_page, username="alice", password="alice", action="login").status_code == 503
        wait_for(lambda: 503 in traffic.statuses("down"), 15, message="503 during the outage")

        mongo.start(timeout=60)
        traffic.phase = "after"
        wait_all_ready(stack)
        wait_for(lambda: traffic.statuses("after") == {200}, 30, interval=0.5, message="traffic recovered")
    finally:
        traffic.stop()

    assert traffic.statuses("before") == {200}
    assert traffic.statuses("down") <= {200, 503}
    read = requests.get(f"{stack.gateway.url}/movies/{movie_id}", headers=headers, timeout=15)
    assert read.status_code == 200
    assert read.json()["title"] == "Kept across an outage"
