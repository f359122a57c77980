"""HEAD on every GET endpoint, and `Allow` on every 405, against the real movies_srv."""

from __future__ import annotations

import pytest

from tests.movies.conftest import MOVIE


@pytest.fixture
def movie(api, alice):
    response = api("POST", "/api/movies", alice, MOVIE)
    assert response.status == 201, response.body
    return response.json()


def test_head_matches_get_without_body(api, alice, movie):
    paths = ["/api/movies", "/api/movies?limit=1", f"/api/movies/{movie['id']}", "/api/identity",
             "/api/openapi.json", "/healthz", "/readyz"]
    for path in paths:
        get = api("GET", path, alice)
        head = api("HEAD", path, alice)
        assert get.status == 200, path
        assert head.status == 200, path
        assert head.body == b"", path
        assert head.headers["Content-Length"] == str(len(get.body)), path
        assert head.headers["Content-Type"] == get.headers["Content-Type"], path
        assert head.headers.get("ETag") == get.headers.get("ETag"), path
        assert head.headers.get("Link") == get.headers.get("Link"), path
        assert head.headers.get("X-Total-Count") == get.headers.get("X-Total-Count"), path


def test_head_needs_a_token(api, movie):
    response = api("HEAD", f"/api/movies/{movie['id']}")
    assert response.status == 401
    assert response.body == b""
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="movies"'


def test_head_not_modified(api, alice, movie):
    response = api("HEAD", f"/api/movies/{movie['id']}", alice, headers={"If-None-Match": '"1"'})
    assert response.status == 304
    assert response.headers["ETag"] == '"1"'


ALLOW_CASES = [
    # (case id, method, path, expected Allow)
    ("delete_collection", "DELETE", "/api/movies", "GET, HEAD, POST"),
    ("post_movie", "POST", "/api/movies/0123456789abcdef01234567", "GET, HEAD, DELETE, PATCH, PUT"),
    ("options_movie", "OPTIONS", "/api/movies/0123456789abcdef01234567", "GET, HEAD, DELETE, PATCH, PUT"),
    ("put_identity", "PUT", "/api/identity", "GET, HEAD"),
    ("post_openapi", "POST", "/api/openapi.json", "GET, HEAD"),
    ("post_healthz", "POST", "/healthz", "GET, HEAD"),
    ("delete_readyz", "DELETE", "/readyz", "GET, HEAD"),
    ("method_unknown_to_tornado", "TRACE", "/api/movies", "GET, HEAD, POST"),
]


@pytest.mark.parametrize("method,path,allow", [case[1:] for case in ALLOW_CASES],
                         ids=[case[0] for case in ALLOW_CASES])
def test_405_lists_allowed_methods(api, alice, method, path, allow):
    response = api(method, path, alice)
    assert response.status == 405
    assert response.headers["Allow"] == allow
    assert response.json()["error"] == "method_not_allowed"
