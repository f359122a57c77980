"""Each validation error of the movies API: status 400 and the field it names."""

from __future__ import annotations

import pytest

from tests.movies.conftest import MOVIE

BODY_CASES = [
    # (case id, body, {field: problem})
    ("title_missing", {k: v for k, v in MOVIE.items() if k != "title"}, {"title": "is required"}),
    ("title_blank", {**MOVIE, "title": "   "}, {"title": "must be a non-empty string"}),
    ("title_number", {**MOVIE, "title": 7}, {"title": "must be a non-empty string"}),
    ("title_too_long", {**MOVIE, "title": "x" * 201}, {"title": "must be at most 200 characters"}),
    ("genre_null", {**MOVIE, "genre": None}, {"genre": "is required and cannot be null"}),
    ("genre_too_long", {**MOVIE, "genre": "g" * 101}, {"genre": "must be at most 100 characters"}),
    ("rating_text", {**MOVIE, "rating": "9.3"}, {"rating": "must be a number from 0 to 10"}),
    ("rating_boolean", {**MOVIE, "rating": True}, {"rating": "must be a number from 0 to 10"}),
    ("rating_above_10", {**MOVIE, "rating": 10.5}, {"rating": "must be a number from 0 to 10"}),
    ("rating_negative", {**MOVIE, "rating": -1}, {"rating": "must be a number from 0 to 10"}),
    ("release_not_date", {**MOVIE, "releaseDate": "31/03/1999"},
     {"releaseDate": "must be an ISO 8601 date (YYYY-MM-DD)"}),
    ("release_impossible_day", {**MOVIE, "releaseDate": "1999-02-30"},
     {"releaseDate": "must be an ISO 8601 date (YYYY-MM-DD)"}),
    ("release_too_early", {**MOVIE, "releaseDate": "1700-01-01"},
     {"releaseDate": "must be between 1870-01-01 and 2100-12-31"}),
    ("image_not_http", {**MOVIE, "imageUrl": "javascript:alert(1)"},
     {"imageUrl": "must be an http or https URL of at most 2048 characters"}),
    ("image_too_long", {**MOVIE, "imageUrl": "https://example.org/" + "a" * 2048},
     {"imageUrl": "must be an http or https URL of at most 2048 characters"}),
    ("unknown_field", {**MOVIE, "director": "Wachowskis"}, {"director": "is not a movie field"}),
    ("owner_given", {**MOVIE, "owner": "someone-else"},
     {"owner": "is set by the server and cannot be changed"}),
    ("id_given", {**MOVIE, "id": "0123456789abcdef01234567"},
     {"id": "is set by the server and cannot be changed"}),
    ("several_fields", {"title": "", "rating": 11},
     {"title": "must be a non-empty string", "rating": "must be a number from 0 to 10",
      "genre": "is required", "releaseDate": "is required"}),
    ("body_array", [MOVIE], {"body": "must be a JSON object"}),
]


def expected_error(fields: dict[str, str], subject: str = "movie") -> dict:
    listed = "; ".join(f"{name} {problem}" for name, problem in fields.items())
    return {"error": "invalid_request", "error_description": f"invalid {subject}: {listed}", "fields": fields}


@pytest.mark.parametrize("body,fields", [case[1:] for case in BODY_CASES], ids=[case[0] for case in BODY_CASES])
def test_create_rejects(api, alice, body, fields):
    response = api("POST", "/api/movies", alice, body)
    assert response.status == 400
    assert response.json() == expected_error(fields)


def test_rejected_create_stores_nothing(api, alice, movies_db):
    assert api("POST", "/api/movies", alice, {**MOVIE, "rating": 11}).status == 400
    assert movies_db["movies"].count_documents({}) == 0


def test_invalid_json_body(api, alice):
    response = api("POST", "/api/movies", alice, raw_body=b"{title:", headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert response.json() == expected_error({"body": "is not valid JSON"})


def test_not_json_media_type_is_415(api, alice):
    response = api("POST", "/api/movies", alice, raw_body=b"title=x",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 415
    assert response.json() == {"error": "unsupported_media_type",
                               "error_description": "the body must be JSON (application/json), "
                                                    "not application/x-www-form-urlencoded"}


def test_patch_rejects_null_required_field(api, alice):
    movie = api("POST", "/api/movies", alice, MOVIE).json()
    response = api("PATCH", f"/api/movies/{movie['id']}", alice, {"title": None, "version": 5})
    assert response.status == 400
    assert response.json() == expected_error({"title": "is required and cannot be null",
                                              "version": "is set by the server and cannot be changed"})


def test_put_requires_every_field(api, alice):
    movie = api("POST", "/api/movies", alice, MOVIE).json()
    response = api("PUT", f"/api/movies/{movie['id']}", alice, {"title": "Only a title"})
    assert response.status == 400
    assert response.json() == expected_error({"genre": "is required", "rating": "is required",
                                              "releaseDate": "is required"})


QUERY_CASES = [
    ("limit_zero", "limit=0", {"limit": "must be a whole number from 1 to 100"}),
    ("limit_too_large", "limit=101", {"limit": "must be a whole number from 1 to 100"}),
    ("limit_text", "limit=ten", {"limit": "must be a whole number from 1 to 100"}),
    ("page_zero", "page=0", {"page": "must be a whole number of at least 1"}),
    ("sort_unknown", "sort=director",
     {"sort": "must be one of title, genre, rating, releaseDate, id, with - in front for descending"}),
    ("cursor_garbage", "cursor=abc",
     {"cursor": "is not a cursor from this API: use the Link header of the previous page"}),
    ("page_and_cursor", "page=2&cursor=abc",
     {"page": "cannot be combined with cursor",
      "cursor": "is not a cursor from this API: use the Link header of the previous page"}),
    ("title_too_long", "title=" + "x" * 201, {"title": "must be 1 to 200 characters"}),
    ("genre_empty", "genre=", {"genre": "must be 1 to 200 characters"}),
]


@pytest.mark.parametrize("query,fields", [case[1:] for case in QUERY_CASES], ids=[case[0] for case in QUERY_CASES])
def test_list_rejects(api, alice, query, fields):
    response = api("GET", f"/api/movies?{query}", alice)
    assert response.status == 400
    assert response.json() == expected_error(fields, subject="query")


def test_cursor_of_other_sort(api, alice):
    for index in range(3):
        api("POST", "/api/movies", alice, {**MOVIE, "title": f"Film {index}"})
    link = api("GET", "/api/movies?limit=1&sort=title", alice).headers["Link"]
    cursor_query = link[2:link.index(">")]
    response = api("GET", f"/api/movies?{cursor_query}&sort=-rating", alice)
    assert response.status == 400
    assert response.json()["fields"] == {"cursor": "was made for sort=title, not sort=-rating"}
