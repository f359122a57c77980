"""Two instances of every service on a real Redis Cluster and SecantusDB.

Each service runs twice on loopback. Browsers and clients reach identity_srv,
gateway_srv and webclient_srv through `RoundRobinBalancer`, as they would reach
a load balancer. The tests also address single instances directly to show that
no state lives in one process. A code issued by one provider is redeemed at the
other, and a refresh token rotated at one is caught as reused at the other. A
rate limit counts across both gateways, and a browser session started at one
webclient continues at the other. The last test kills one instance of each
service while a browser keeps loading pages.

The tests run in file order and share one stack, so the last one runs last.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from pymongo import MongoClient

from tests.gateway.calls import call
from tests.signin.conftest import Browser, exchange, pkce_pair, query_of, refresh
from tests.support.identity import client_credentials_token
from tests.support.processes import ROOT, ServiceProcess, wait_for

from .balancer import RoundRobinBalancer

pytestmark = pytest.mark.slow

IDENTITY_DATABASE = "scale_identity"
MOVIES_DATABASE = "scale_movies"
PER_CLIENT_LIMIT = 50
MOVIE = {"title": "Heat", "genre": "Crime", "rating": 8.3, "releaseDate": "1995-12-15"}


@dataclass
class Stack:
    identity: list[ServiceProcess]
    movies: list[ServiceProcess]
    gateway: list[ServiceProcess]
    webclient: list[ServiceProcess]
    identity_lb: RoundRobinBalancer
    gateway_lb: RoundRobinBalancer
    webclient_lb: RoundRobinBalancer

    @property
    def redirect_uri(self) -> str:
        return f"{self.webclient_lb.url}/signin-oidc"


def local_url(service: ServiceProcess) -> str:
    return f"http://localhost:{service.port}"


def run_script(script: str, env: dict[str, str]) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / script)], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"


def start_pair(package: str, env: dict[str, str], folder, ports: list[int] | None = None) -> list[ServiceProcess]:
    """Start two instances at once, so their start-up work (keys, indexes) races."""
    pair = [ServiceProcess(package, dict(env), folder / f"{package}-{index}.log") for index in range(2)]
    for index, service in enumerate(pair):
        if ports:
            service.port = ports[index]
        service.start(wait=False)
    for service in pair:
        wait_for(service._healthy, 30, message=f"{package} /healthz")
    return pair


@pytest.fixture(scope="module")
def stack(redis_cluster, mongo_proc, tmp_path_factory):
    redis_cluster.flush()
    mongo = MongoClient(mongo_proc.url, serverSelectionTimeoutMS=5000)
    for name in (IDENTITY_DATABASE, MOVIES_DATABASE):
        mongo.drop_database(name)
    mongo.close()

    folder = tmp_path_factory.mktemp("scale")
    identity_ports = [ServiceProcess("identity_srv", {}, folder / "unused").port for _ in range(2)]
    identity_lb = RoundRobinBalancer(identity_ports).start()
    webclient_ports = [ServiceProcess("webclient_srv", {}, folder / "unused").port for _ in range(2)]
    webclient_lb = RoundRobinBalancer(webclient_ports).start()

    clients = (ROOT / "conf" / "clients.toml").read_text().replace("http://localhost:5002", webclient_lb.url)
    (folder / "clients.toml").write_text(clients)
    routes = (ROOT / "conf" / "routes.toml").read_text().replace("per_client = 600",
                                                                 f"per_client = {PER_CLIENT_LIMIT}")
    (folder / "routes.toml").write_text(routes)

    base = {**os.environ, "REDIS_URL": redis_cluster.url, "MONGO_URL": mongo_proc.url,
            "ISSUER": identity_lb.url, "LOG_LEVEL": "info"}
    identity_env = {**base, "IDENTITY__MONGO__DATABASE": IDENTITY_DATABASE,
                    "IDENTITY__CLIENTS__FILE": str(folder / "clients.toml"),
                    "IDENTITY__SIGNIN__REFRESH_REUSE_GRACE": "0"}
    run_script("seed_users.py", identity_env)

    started: list[ServiceProcess] = []
    balancers = [identity_lb, webclient_lb]
    try:
        identity = start_pair("identity_srv", identity_env, folder, identity_ports)
        started += identity
        movies = start_pair("movies_srv", {**base, "MOVIES__MONGO__DATABASE": MOVIES_DATABASE}, folder)
        started += movies
        gateway = start_pair("gateway_srv", {**base, "GATEWAY_MOVIES_URL": ",".join(m.url for m in movies),
                                             "GATEWAY__ROUTES__FILE": str(folder / "routes.toml")}, folder)
        started += gateway
        gateway_lb = RoundRobinBalancer([g.port for g in gateway]).start()
        balancers.append(gateway_lb)
        webclient = start_pair("webclient_srv", {**base, "WEBCLIENT__GATEWAY__URL": gateway_lb.url,
                                                 "WEBCLIENT__OIDC__PUBLIC_URL": webclient_lb.url},
                               folder, webclient_ports)
        started += webclient
        yield Stack(identity, movies, gateway, webclient, identity_lb, gateway_lb, webclient_lb)
    finally:
        for service in reversed(started):
            if service.process is not None and service.process.poll() is None:
                service.stop()
        for balancer in balancers:
            balancer.stop()


def sign_in_at(stack: Stack, identity: ServiceProcess, username: str = "alice") -> tuple[str, str]:
    """Sign in at one provider instance; return the code and its PKCE verifier."""
    verifier, challenge = pkce_pair()
    browser = Browser(local_url(identity))
    redirect = browser.sign_in(username, username, redirect_uri=stack.redirect_uri, challenge=challenge)
    assert redirect.headers["Location"].startswith(stack.redirect_uri), redirect.headers["Location"]
    return query_of(redirect)["code"], verifier


def test_code_redeemed_at_other_provider(stack):
    first, second = stack.identity
    code, verifier = sign_in_at(stack, first)

    tokens = exchange(local_url(second), code, verifier, redirect_uri=stack.redirect_uri)
    assert tokens.status_code == 200, tokens.text
    assert set(tokens.json()) >= {"access_token", "refresh_token", "id_token"}

    # RFC 6749 §4.1.2: a code is single-use, so the other instance rejects the replay.
    replay = exchange(local_url(first), code, verifier, redirect_uri=stack.redirect_uri)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"


def test_refresh_reuse_caught_at_other_provider(stack):
    first, second = stack.identity
    code, verifier = sign_in_at(stack, first)
    issued = exchange(local_url(first), code, verifier, redirect_uri=stack.redirect_uri).json()

    rotated = refresh(local_url(first), issued["refresh_token"])
    assert rotated.status_code == 200, rotated.text

    reused = refresh(local_url(second), issued["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # Reuse revoked the family, so the token the first instance rotated in is dead too.
    after = refresh(local_url(first), rotated.json()["refresh_token"])
    assert after.status_code == 400
    assert after.json()["error"] == "invalid_grant"


def test_movie_edited_through_both_gateways(stack):
    first, second = (local_url(g) for g in stack.gateway)
    code, verifier = sign_in_at(stack, stack.identity[1])
    token = exchange(stack.identity_lb.url, code, verifier, redirect_uri=stack.redirect_uri).json()["access_token"]

    created = call(first, "POST", "/movies", token, MOVIE)
    assert created.status == 201, created.body
    path = f"/movies/{created.json()['id']}"
    shown = call(second, "GET", path, token)
    assert shown.status == 200
    etag = shown.headers["ETag"]

    replaced = call(first, "PUT", path, token, {**MOVIE, "rating": 9.1}, headers={"If-Match": etag})
    assert replaced.status == 200, replaced.body
    stale = call(second, "PUT", path, token, {**MOVIE, "rating": 1.0}, headers={"If-Match": etag})
    assert stale.status == 412
    assert call(second, "GET", path, token).json()["rating"] == 9.1


def test_rate_limit_shared_by_gateways(stack):
    token = client_credentials_token(stack.identity_lb.url)
    remaining = []
    for index in range(PER_CLIENT_LIMIT):
        gateway = stack.gateway[index % 2]
        response = call(local_url(gateway), "GET", "/movies", token)
        assert response.status == 200, response.body
        remaining.append(int(re.search(r'"client";r=(\d+)', response.headers["RateLimit"]).group(1)))
    assert remaining == list(range(PER_CLIENT_LIMIT - 1, -1, -1))

    for gateway in stack.gateway:
        limited = call(local_url(gateway), "GET", "/movies", token)
        assert limited.status == 429
        assert int(limited.headers["Retry-After"]) > 0


def to_instance(url: str, service: ServiceProcess) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"localhost:{service.port}"))


def webclient_sign_in(stack: Stack, start: ServiceProcess, finish: ServiceProcess,
                      username: str = "alice") -> requests.Session:
    """Start a browser sign-in at one webclient instance and finish it at the other."""
    browser = Browser(stack.identity_lb.url)
    started = browser.get(f"{local_url(start)}/signin", return_url="/movies")
    assert started.status_code == 302, started.text[:300]
    login_page = browser.follow(started)
    while login_page.status_code in (302, 303):  # the authorization endpoint, then the login page
        login_page = browser.follow(login_page)
    resumed = browser.submit(login_page, username=username, password=username, action="login")
    callback = browser.follow(resumed)
    assert callback.headers["Location"].startswith(stack.redirect_uri), callback.headers["Location"]
    finished = browser.get(to_instance(callback.headers["Location"], finish))
    assert finished.status_code in (302, 303), finished.text[:300]
    return browser.http


def test_webclient_session_continues_elsewhere(stack):
    first, second = stack.webclient
    session = webclient_sign_in(stack, first, second)
    for instance in (first, second):
        page = session.get(f"{local_url(instance)}/movies", allow_redirects=False, timeout=15)
        assert page.status_code == 200, page.text[:300]
        assert "Heat" in page.text


def test_killing_one_instance_of_each(stack):
    """SIGKILL one instance of every service while a browser loads pages through the balancers."""
    session = webclient_sign_in(stack, stack.webclient[1], stack.webclient[1])
    results: list[tuple[float, float, int]] = []
    stop = threading.Event()

    def browse() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                status = session.get(f"{stack.webclient_lb.url}/movies", allow_redirects=False, timeout=15,
                                     headers={"Connection": "close"}).status_code
            except requests.RequestException:
                status = 0
            results.append((started, time.monotonic(), status))
            # Each page load spends one request of the browser client's rate limit.
            time.sleep(0.15)

    browser = threading.Thread(target=browse)
    browser.start()
    try:
        time.sleep(1.0)
        # The balancers spread the page loads, so the victims were serving until now.
        assert stack.webclient_lb.connections[stack.webclient[0].port] > 0
        assert stack.gateway_lb.connections[stack.gateway[0].port] > 0
        killed_at = time.monotonic()
        for service in (stack.identity[0], stack.movies[0], stack.gateway[0], stack.webclient[0]):
            service.process.send_signal(signal.SIGKILL)
        for service in (stack.identity[0], stack.movies[0], stack.gateway[0], stack.webclient[0]):
            service.process.wait(10)
        dead_at = time.monotonic()
        time.sleep(2.0)
    finally:
        stop.set()
        browser.join(30)

    # A page load that overlapped the kills may have been on a dying instance and
    # may fail; every other one must succeed.
    before = [status for started, ended, status in results if ended < killed_at]
    in_flight = [status for started, ended, status in results if started <= dead_at and ended >= killed_at]
    after = [status for started, ended, status in results if started > dead_at]
    assert before == [200] * len(before)
    assert len(before) >= 3
    assert len(in_flight) <= 2
    assert after == [200] * len(after)
    assert len(after) >= 5

    # The survivors still serve everything: a new sign-in through the balancers,
    # a token refresh, and an edit.
    code, verifier = sign_in_at(stack, stack.identity[1], "bob")
    tokens = exchange(stack.identity_lb.url, code, verifier, redirect_uri=stack.redirect_uri)
    assert tokens.status_code == 200, tokens.text
    assert refresh(stack.identity_lb.url, tokens.json()["refresh_token"]).status_code == 200
    created = call(stack.gateway_lb.url.replace("localhost", "127.0.0.1"), "POST", "/movies",
                   tokens.json()["access_token"], {**MOVIE, "title": "Ronin"})
    assert created.status == 201, created.body
    fresh = webclient_sign_in(stack, stack.webclient[1], stack.webclient[1], "bob")
    page = fresh.get(f"{stack.webclient_lb.url}/movies", allow_redirects=False, timeout=15)
    assert page.status_code == 200
    assert "Ronin" in page.text
