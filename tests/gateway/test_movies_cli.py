"""scripts/movies_cli.py against real identity_srv, movies_srv and gateway processes."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys

import pytest

from tests.support.identity import client_credentials_token
from tests.support.processes import ROOT, ServiceProcess

from .calls import call
from .test_movies_e2e import DATABASE

CLI = ROOT / "scripts" / "movies_cli.py"
MOVIES = [
    {"title": "The Matrix", "genre": "Science Fiction", "rating": 8.7, "releaseDate": "1999-03-31"},
    {"title": "The Matrix Reloaded", "genre": "Science Fiction", "rating": 7.2, "releaseDate": "2003-05-15"},
    {"title": "Amélie", "genre": "Comedy", "rating": 8.3, "releaseDate": "2001-04-25"},
]


def load_cli():
    spec = importlib.util.spec_from_file_location("movies_cli", CLI)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up by name while the class is created.
    sys.modules["movies_cli"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def stack(identity_service, store_env, tmp_path):
    """identity_srv, a movies_srv that lets machine tokens write (to seed), and a gateway."""
    movies = ServiceProcess("movies_srv", {**store_env, "ISSUER": identity_service.url,
                                           "MOVIES__MONGO__DATABASE": DATABASE,
                                           "MOVIES__ACCESS__MACHINE_TOKENS_MAY_WRITE": "true"},
                            tmp_path / "movies.log").start()
    gateway = ServiceProcess("gateway_srv", {**store_env, "ISSUER": identity_service.url,
                                             "GATEWAY_MOVIES_URL": movies.url},
                             tmp_path / "gateway.log").start()
    token = client_credentials_token(identity_service.url)
    created = []
    for movie in MOVIES:
        response = call(gateway.url, "POST", "/movies", token, movie)
        assert response.status == 201, response.body
        created.append(response.json())
    yield identity_service, gateway, created
    gateway.stop()
    movies.stop()


def run_cli(identity, gateway, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ISSUER": identity.url, "MOVIES_GATEWAY": gateway.url}
    return subprocess.run([sys.executable, str(CLI), *args], check=False, env=env, capture_output=True, text=True, timeout=60)


def test_cli_lists_searches_shows(stack):
    identity, gateway, created = stack
    listed = run_cli(identity, gateway, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ID", "TITLE", "GENRE", "RATING", "RELEASED", "OWNER"]
    assert [line.split("  ")[1].strip() for line in lines[1:]] == [
        "Amélie", "The Matrix", "The Matrix Reloaded"]

    found = run_cli(identity, gateway, "--json", "search", "reloaded")
    assert found.returncode == 0, found.stderr
    assert [movie["title"] for movie in json.loads(found.stdout)] == ["The Matrix Reloaded"]

    shown = run_cli(identity, gateway, "show", created[2]["id"])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[:2] == [f"ID        {created[2]['id']}", "TITLE     Amélie"]

    by_genre = run_cli(identity, gateway, "--json", "list", "--genre", "Comedy")
    assert [movie["id"] for movie in json.loads(by_genre.stdout)] == [created[2]["id"]]


def test_cli_reports_errors_on_one_line(stack, tmp_path):
    identity, gateway, _ = stack
    missing = run_cli(identity, gateway, "show", "65f1c0ffee0123456789abcd")
    assert missing.returncode == 1
    assert missing.stderr.startswith("movies_cli: GET /movies/65f1c0ffee0123456789abcd failed: 404")
    env_secret = {**os.environ, "ISSUER": identity.url, "MOVIES_GATEWAY": gateway.url,
                  "MOVIES_CLIENT_SECRET": "wrong"}
    wrong = subprocess.run([sys.executable, str(CLI), "list"], check=False, env=env_secret, capture_output=True, text=True,
                           timeout=60)
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("movies_cli: token request for client movieClient failed: 401 invalid_client")
    assert "Traceback" not in wrong.stderr


def test_token_reused_until_near_expiry(stack, tmp_path):
    identity, gateway, created = stack
    cli = load_cli()
    now = [1000.0]
    tokens = cli.TokenSource(identity.url, "movieClient", "secret", "movieAPI", clock=lambda: now[0])
    client = cli.MoviesClient(gateway.url, tokens)
    client.show(created[0]["id"])
    first = tokens.token()
    now[0] += 3600 - cli.REFRESH_MARGIN - 1
    client.list(None, None, "title", 5)
    assert tokens.requests == 1
    assert tokens.token() == first
    now[0] += 2
    assert tokens.token() != first
    assert tokens.requests == 2


def test_token_cache_file_private_and_reused(stack, tmp_path):
    identity, gateway, _ = stack
    cache = tmp_path / "cache" / "token.json"
    for _ in range(2):
        result = run_cli(identity, gateway, "--token-cache", str(cache), "list")
        assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert identity.log().count("POST /connect/token 200") == 2  # the stack's seeding token, then one for both runs
    assert "secret" not in cache.read_text()
