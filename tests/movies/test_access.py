"""The owner and admin rules, machine tokens, and the settings that change them."""

from __future__ import annotations

import pytest

from tests.movies.conftest import ALICE, MOVIE, call, start_movies

FORBIDDEN_CHANGE = {"error": "forbidden",
                    "error_description": "only the movie's owner or an admin may change or delete it"}
FORBIDDEN_MACHINE = {"error": "forbidden",
                     "error_description": "machine tokens (client_credentials) may only read movies"}


def alice_movie(api, alice):
    response = api("POST", "/api/movies", alice, MOVIE)
    assert response.status == 201
    return response.json()


@pytest.mark.parametrize("method,body", [("PUT", MOVIE), ("PATCH", {"rating": 1.0}), ("DELETE", None)])
def test_other_user_cannot_change(api, issuer, alice, method, body):
    movie = alice_movie(api, alice)
    carol = issuer.sign(issuer.user_claims("5551234", roles=["user"]))
    response = api(method, f"/api/movies/{movie['id']}", carol, body)
    assert response.status == 403
    assert response.json() == FORBIDDEN_CHANGE
    assert api("GET", f"/api/movies/{movie['id']}", alice).json() == movie


@pytest.mark.parametrize("roles", [None, [], ["user", "editor"], "administrator"])
def test_non_admin_roles_cannot_change(api, issuer, alice, roles):
    movie = alice_movie(api, alice)
    token = issuer.sign(issuer.user_claims("5551234", roles=roles))
    assert api("DELETE", f"/api/movies/{movie['id']}", token).status == 403


def test_admin_changes_and_deletes_any(api, alice, bob):
    movie = alice_movie(api, alice)
    response = api("PATCH", f"/api/movies/{movie['id']}", bob, {"genre": "Action"})
    assert response.status == 200
    assert response.json()["owner"] == ALICE
    assert response.json()["ownerName"] == "Alice Smith"
    assert api("DELETE", f"/api/movies/{movie['id']}", bob).status == 204


def test_admin_role_as_string_claim(api, issuer, alice):
    movie = alice_movie(api, alice)
    admin = issuer.sign(issuer.user_claims("5551234", roles=None, role="admin"))
    assert api("DELETE", f"/api/movies/{movie['id']}", admin).status == 204


def test_owner_cannot_be_changed(api, alice, bob):
    movie = alice_movie(api, alice)
    response = api("PATCH", f"/api/movies/{movie['id']}", bob, {"owner": "88421113", "ownerName": "Bob Smith"})
    assert response.status == 400
    assert response.json()["fields"] == {"owner": "is set by the server and cannot be changed",
                                         "ownerName": "is set by the server and cannot be changed"}


def test_owner_name_cannot_be_given_at_create(api, alice):
    response = api("POST", "/api/movies", alice, {**MOVIE, "ownerName": "Someone Else"})
    assert response.status == 400
    assert response.json()["fields"] == {"ownerName": "is set by the server and cannot be changed"}


def test_machine_token_reads(api, alice, machine):
    movie = alice_movie(api, alice)
    assert api("GET", "/api/movies", machine).json() == [movie]
    assert api("GET", f"/api/movies/{movie['id']}", machine).json() == movie


@pytest.mark.parametrize("method,path_suffix,body", [
    ("POST", "", MOVIE), ("PUT", "/{id}", MOVIE), ("PATCH", "/{id}", {"rating": 1.0}), ("DELETE", "/{id}", None)])
def test_machine_token_cannot_write(api, alice, machine, method, path_suffix, body):
    movie = alice_movie(api, alice)
    response = api(method, "/api/movies" + path_suffix.format(id=movie["id"]), machine, body)
    assert response.status == 403
    assert response.json() == FORBIDDEN_MACHINE


@pytest.fixture(scope="module")
def permissive_service(issuer, redis_proc, mongo_proc, tmp_path_factory):
    """movies_srv with machine writes allowed and If-Match required."""
    service = start_movies(redis_proc.url, mongo_proc.url, issuer.url,
                           tmp_path_factory.mktemp("permissive") / "movies_srv.log",
                           MOVIES__ACCESS__MACHINE_TOKENS_MAY_WRITE="true",
                           MOVIES__WRITES__REQUIRE_IF_MATCH="true")
    yield service
    assert service.stop() == 0


def test_machine_writes_when_configured(permissive_service, movies_db, issuer, machine):
    url = permissive_service.url
    created = call(url, "POST", "/api/movies", machine, MOVIE)
    assert created.status == 201
    assert created.json()["owner"] == "movieClient"
    # A client_credentials token has no `name` claim.
    assert created.json()["ownerName"] is None
    path = f"/api/movies/{created.json()['id']}"
    assert call(url, "PATCH", path, machine, {"rating": 2.0}, headers={"If-Match": '"1"'}).status == 200
    assert call(url, "DELETE", path, machine, headers={"If-Match": '"2"'}).status == 204


def test_required_if_match_missing_is_428(permissive_service, movies_db, alice):
    url = permissive_service.url
    movie = call(url, "POST", "/api/movies", alice, MOVIE).json()
    for method, body in [("PUT", MOVIE), ("PATCH", {"rating": 1.0}), ("DELETE", None)]:
        response = call(url, method, f"/api/movies/{movie['id']}", alice, body)
        assert response.status == 428
        assert response.json() == {"error": "precondition_required",
                                   "error_description": "send If-Match with the ETag of the movie you read"}
