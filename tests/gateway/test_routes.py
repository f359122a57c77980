"""The route file: the demo table loads, and each mistake stops the gateway naming the route."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway_srv.routes import load_route_table
from gateway_srv.settings import load_settings
from servicekit.settings import SettingsError

SCOPES = frozenset({"movieAPI", "openid"})

DOWNSTREAMS = """
[downstreams.svc]
hosts = ["http://127.0.0.1:9"]
"""


def route(name: str, upstream: str, downstream: str, extra: str = "") -> str:
    return f"""
[[routes]]
name = "{name}"
upstream_path = "{upstream}"
downstream_path = "{downstream}"
downstream = "svc"
{extra}
"""


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None):
    path = tmp_path / "routes.toml"
    path.write_text(text)
    return load_route_table(path, SCOPES, env or {})


def test_demo_routes_load():
    settings = load_settings({"REDIS_URL": "redis://127.0.0.1:1/0"})
    table = settings.routes
    assert [(r.name, r.upstream_path.text, r.downstream_path.text) for r in table.routes] == [
        ("movie", "/movies/{id}", "/api/movies/{id}"),
        ("movies", "/movies", "/api/movies"),
    ]
    assert table.downstreams["movies"].hosts == ("http://localhost:5001",)
    assert [r.auth.scopes for r in table.routes] == [frozenset({"movieAPI"})] * 2


def test_env_overrides_downstream_hosts(tmp_path):
    table = load(tmp_path, DOWNSTREAMS + route("a", "/a", "/a"),
                 {"GATEWAY_SVC_URL": "http://127.0.0.1:7001, http://127.0.0.1:7002/"})
    assert table.downstreams["svc"].hosts == ("http://127.0.0.1:7001", "http://127.0.0.1:7002")


def test_methods_split_one_template(tmp_path):
    table = load(tmp_path, DOWNSTREAMS
                 + route("read", "/a/{id}", "/a/{id}", 'upstream_methods = ["GET", "HEAD"]')
                 + route("write", "/a/{x}", "/b/{x}", 'upstream_methods = ["PUT", "DELETE"]'))
    assert {r.name for r in table.routes} == {"read", "write"}


def test_claims_parse(tmp_path):
    table = load(tmp_path, DOWNSTREAMS + route("a", "/a", "/a", """
[routes.authentication]
scopes = ["movieAPI"]
[[routes.claims]]
claim = "role"
values = ["admin", "editor"]
match = "all"
"""))
    claim = table.routes[0].auth.claims[0]
    assert claim.claim == "role"
    assert claim.values == frozenset({"admin", "editor"})
    assert claim.mode == "all"


@pytest.mark.parametrize("text, message", [
    (DOWNSTREAMS + route("a", "/movies/{id}", "/api/{id}") + route("b", "/movies/{movie}", "/x/{movie}"),
     "route 'b' in {path} overlaps route 'a'"),
    (DOWNSTREAMS + route("a", "/m/{id}", "/m/{id}", 'upstream_methods = ["GET"]')
     + route("b", "/m/{id}", "/n/{id}", 'upstream_methods = ["GET", "POST"]'),
     "route 'b' in {path} overlaps route 'a'"),
    (DOWNSTREAMS + route("a", "/movies/{id}", "/api/movies"),
     "route 'a' in {path}: placeholder(s) id must appear in both"),
    (DOWNSTREAMS + route("a", "/movies", "/api/movies/{id}"),
     "route 'a' in {path}: placeholder(s) id must appear in both"),
    (DOWNSTREAMS + route("a", "/movies", "/api", '[routes.authentication]\nscopes = ["movieAPI", "admin.all"]'),
     "route 'a' in {path}: no configured client can obtain scope(s) admin.all"),
    (DOWNSTREAMS + route("a", "/movies", "/api").replace('"svc"\n', '"nowhere"\n', 1),
     "route 'a' in {path}: downstream 'nowhere' is not defined"),
    (DOWNSTREAMS + route("a", "/movies/{*rest}/x", "/api"),
     "route 'a' in {path}: '/movies/{{*rest}}/x': the catch-all {{*rest}} must be the last segment"),
    (DOWNSTREAMS + route("a", "/_gateway/x", "/api"),
     "route 'a' in {path}: /_gateway/x is served by the gateway itself"),
    (DOWNSTREAMS + route("a", "/a", "/a", 'upstream_methods = ["FETCH"]'),
     "route 'a' in {path}: upstream_methods must be a list of"),
    (DOWNSTREAMS + route("a", "/a", "/a", "[[routes.claims]]\nclaim = \"role\"\nvalues = [\"x\"]"),
     "route 'a' in {path}: `claims` and `claims_to_headers` need an [routes.authentication] table"),
    (DOWNSTREAMS + route("a", "/a", "/a", '[routes.authentication]\nscopes = []\n[[routes.claims]]\n'
                                          'claim = "role"\nvalues = ["x"]\nmatch = "most"'),
     "route 'a' in {path}: claim 'role' has match 'most'"),
    (DOWNSTREAMS + route("a", "/a", "/a", "timeout = 0"),
     "route 'a' in {path}: timeout must be a number above 0"),
    (DOWNSTREAMS + route("a", "/a", "/a", "[routes.rate_limit]\nwindow = 10"),
     "route 'a' in {path}: rate_limit needs per_client, per_user or per_address"),
    (DOWNSTREAMS + route("a", "/a", "/a", "[routes.rate_limit]\nper_user = 10"),
     "route 'a' in {path}: rate_limit per_user needs an [routes.authentication] table"),
    (DOWNSTREAMS + route("a", "/a", "/a") + route("a", "/b", "/b"),
     "route 'a' in {path} is defined twice"),
    ('[downstreams.svc]\nhosts = ["http://127.0.0.1:9/api"]\n' + route("a", "/a", "/a"),
     "downstream 'svc' in {path}: host 'http://127.0.0.1:9/api' must be an http(s) URL without a path"),
    (DOWNSTREAMS, "route file {path} has no [[routes]]"),
], ids=["same template and method", "shared method", "placeholder missing downstream",
        "placeholder missing upstream", "scope no client can obtain", "unknown downstream",
        "catch-all not last", "reserved path", "unknown method", "claims without authentication",
        "claim match mode", "zero timeout", "rate limit without limit", "per user without authentication",
        "duplicate name",
        "host with path", "no routes"])
def test_invalid_route_file_names_route(tmp_path, text, message):
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, text)
    assert str(caught.value).startswith(message.format(path=tmp_path / "routes.toml"))


def test_gateway_exits_naming_route(tmp_path):
    """The real process stops with status 2 and one line naming the route."""
    path = tmp_path / "routes.toml"
    path.write_text(DOWNSTREAMS + route("broken", "/movies/{id}", "/api/movies"))
    env = {"PATH": "/usr/bin:/bin", "GATEWAY__ROUTES__FILE": str(path), "REDIS_URL": "redis://127.0.0.1:1/0"}
    result = subprocess.run([sys.executable, "-m", "gateway_srv"], check=False, env=env, capture_output=True, text=True,
                            timeout=20, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 2
    assert result.stderr.startswith(f"configuration error: route 'broken' in {path}: placeholder(s) id")
