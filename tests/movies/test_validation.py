"""Each validation error of the movies API: status 400 and the field it names."""

from __future__ import annotations

import json

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
    ("title_lone_surrogate", {**MOVIE, "title": "\ud800"},
     {"title": "must be valid Unicode text (it contains an unpaired surrogate)"}),
    ("title_nul", {**MOVIE, "title": "The\x00Matrix"}, {"title": "must not contain control characters"}),
    ("title_only_nul", {**MOVIE, "title": "\x00"}, {"title": "must not contain control characters"}),
    ("title_escape_sequence", {**MOVIE, "title": "The \x1b[31mMatrix"},
     {"title": "must not contain control characters"}),
    ("title_c1_control", {**MOVIE, "title": "The\x9bMatrix"}, {"title": "must not contain control characters"}),
    ("genre_lone_surrogate", {**MOVIE, "genre": "Drama \udfff"},
     {"genre": "must be valid Unicode text (it contains an unpaired surrogate)"}),
    ("genre_newline_inside", {**MOVIE, "genre": "Science\nFiction"},
     {"genre": "must not contain control characters"}),
    ("image_lone_surrogate", {**MOVIE, "imageUrl": "https://example.org/\ud800.jpg"},
     {"imageUrl": "must be valid Unicode text (it contains an unpaired surrogate)"}),
    ("image_nul", {**MOVIE, "imageUrl": "https://example.org/a\x00.jpg"},
     {"imageUrl": "must be an http or https URL of at most 2048 characters"}),
    ("release_not_date", {**MOVIE, "releaseDate": "31/03/1999"},
     {"releaseDate": "must be a date in the form YYYY-MM-DD"}),
    ("release_impossible_day", {**MOVIE, "releaseDate": "1999-02-30"},
     {"releaseDate": "must be a date in the form YYYY-MM-DD"}),
    ("release_iso_week", {**MOVIE, "releaseDate": "2001-W05"},
     {"releaseDate": "must be a date in the form YYYY-MM-DD"}),
    ("release_iso_week_day", {**MOVIE, "releaseDate": "2001-W05-1"},
     {"releaseDate": "must be a date in the form YYYY-MM-DD"}),
    ("release_basic_format", {**MOVIE, "releaseDate": "20010203"},
     {"releaseDate": "must be a date in the form YYYY-MM-DD"}),
    ("release_date_time", {**MOVIE, "releaseDate": "1999-03-31T00:00:00"},
     {"releaseDate": "must be a date in the form YYYY-MM-DD"}),
    ("release_ordinal_date", {**MOVIE, "releaseDate": "1999-090"},
     {"releaseDate": "must be a date in the form YYYY-MM-DD"}),
    ("release_trailing_newline", {**MOVIE, "releaseDate": "1999-03-31\n"},
     {"releaseDate": "must be a date in the form YYYY-MM-DD"}),
    ("release_arabic_indic_digits", {**MOVIE, "releaseDate": "\u0661\u0669\u0669\u0669-03-31"},
     {"releaseDate": "must be a date in the form YYYY-MM-DD"}),
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


RAW_BODY_CASES = [
    # (case id, body bytes, {field: problem})
    ("nested_100000_arrays", b"[" * 100_000 + b"]" * 100_000,
     {"body": "nests arrays and objects more than 10 levels deep"}),
    ("nested_100000_objects", b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
     {"body": "nests arrays and objects more than 10 levels deep"}),
    ("nested_11_levels", b'{"title":' + b"[" * 10 + b"]" * 10 + b"}",
     {"body": "nests arrays and objects more than 10 levels deep"}),
    # Nine arrays inside the object make ten levels, which is the limit, so the field gets the error.
    ("nested_10_levels", b'{"title":' + b"[" * 9 + b"]" * 9 + b"}",
     {"title": "must be a non-empty string", "genre": "is required", "rating": "is required",
      "releaseDate": "is required"}),
    # Brackets inside strings are text, not nesting.
    ("brackets_in_string", b'{"title": "' + b"[" * 50 + b'\\\"{{"}',
     {"genre": "is required", "rating": "is required", "releaseDate": "is required"}),
    ("latin_1_bytes", '{"title": "Am\u00e9lie"}'.encode("latin-1"), {"body": "is not valid UTF-8"}),
    ("utf_16", '{"title": "x"}'.encode("utf-16"), {"body": "is not valid UTF-8"}),
    ("lone_surrogate_key", b'{"\\ud800": 1}', {"\ud800": "is not a movie field", "title": "is required",
                                              "genre": "is required", "rating": "is required",
                                              "releaseDate": "is required"}),
]


@pytest.mark.parametrize("raw_body,fields", [case[1:] for case in RAW_BODY_CASES],
                         ids=[case[0] for case in RAW_BODY_CASES])
def test_create_rejects_raw_body(api, alice, raw_body, fields):
    response = api("POST", "/api/movies", alice, raw_body=raw_body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert response.json() == expected_error(fields)


def test_lone_surrogate_title_is_400(api, alice, movies_db):
    # The body byte for byte, with the JSON escape of an unpaired surrogate in the title.
    body = b'{"title":"\\ud800","genre":"Drama","rating":5,"releaseDate":"2001-02-03"}'
    response = api("POST", "/api/movies", alice, raw_body=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert response.json() == expected_error(
        {"title": "must be valid Unicode text (it contains an unpaired surrogate)"})
    assert movies_db["movies"].count_documents({}) == 0


def unsupported(description: str) -> dict[str, str]:
    return {"error": "unsupported_media_type", "error_description": description}


MEDIA_TYPE_CASES = [
    # (case id, method, Content-Type or None for none, expected error_description)
    ("post_form", "POST", "application/x-www-form-urlencoded",
     "the body must be application/json in UTF-8, not application/x-www-form-urlencoded"),
    ("post_missing", "POST", None, "the request has no Content-Type: send the body as application/json"),
    ("post_empty", "POST", "", "the request has no Content-Type: send the body as application/json"),
    ("post_latin_1", "POST", "application/json; charset=latin-1",
     "the body must be application/json in UTF-8, not application/json; charset=latin-1"),
    ("post_other_parameter", "POST", "application/json; version=2",
     "the body must be application/json in UTF-8, not application/json; version=2"),
    ("post_text_plain", "POST", "text/plain", "the body must be application/json in UTF-8, not text/plain"),
    ("post_other_json_suffix", "POST", "application/problem+json",
     "the body must be application/json in UTF-8, not application/problem+json"),
    ("post_merge_patch", "POST", "application/merge-patch+json",
     "the body must be application/json in UTF-8, not application/merge-patch+json"),
    ("put_missing", "PUT", None, "the request has no Content-Type: send the body as application/json"),
    ("put_utf_16", "PUT", "application/json; charset=utf-16",
     "the body must be application/json in UTF-8, not application/json; charset=utf-16"),
    ("patch_missing", "PATCH", None,
     "the request has no Content-Type: send the body as application/json or application/merge-patch+json"),
    ("patch_latin_1", "PATCH", "application/merge-patch+json; charset=ISO-8859-1",
     "the body must be application/json or application/merge-patch+json in UTF-8, "
     "not application/merge-patch+json; charset=ISO-8859-1"),
]


@pytest.mark.parametrize("method,content_type,description", [case[1:] for case in MEDIA_TYPE_CASES],
                         ids=[case[0] for case in MEDIA_TYPE_CASES])
def test_unsupported_media_type_is_415(api, alice, movies_db, method, content_type, description):
    movie = api("POST", "/api/movies", alice, MOVIE).json()
    path = "/api/movies" if method == "POST" else f"/api/movies/{movie['id']}"
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = json.dumps({**MOVIE, "title": "Changed"}).encode("utf-8")
    response = api(method, path, alice, raw_body=body, headers=headers)
    assert response.status == 415
    assert response.json() == unsupported(description)
    assert movies_db["movies"].count_documents({}) == 1
    assert movies_db["movies"].find_one({})["version"] == 1


ACCEPTED_MEDIA_TYPES = [
    ("POST", "application/json"),
    ("POST", "Application/JSON"),
    ("POST", "application/json; charset=utf-8"),
    ("POST", "application/json;charset=UTF-8"),
    ("POST", 'application/json; charset="utf-8"'),
    ("PUT", "application/json; charset=utf-8"),
    ("PATCH", "application/json"),
    ("PATCH", "application/merge-patch+json"),
    ("PATCH", "application/merge-patch+json; charset=utf-8"),
]


@pytest.mark.parametrize("method,content_type", ACCEPTED_MEDIA_TYPES)
def test_json_media_type_accepted(api, alice, method, content_type):
    movie = api("POST", "/api/movies", alice, MOVIE).json()
    path = "/api/movies" if method == "POST" else f"/api/movies/{movie['id']}"
    body = json.dumps({**MOVIE, "title": "Changed"}).encode("utf-8")
    response = api(method, path, alice, raw_body=body, headers={"Content-Type": content_type})
    assert response.status in (200, 201), response.body
    assert response.json()["title"] == "Changed"


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
    ("genre_repeated", "genre=Drama&genre=Comedy", {"genre": "must be given only once"}),
    ("owner_repeated", "owner=818727&owner=818727", {"owner": "must be given only once"}),
    ("title_repeated", "title=a&title=b", {"title": "must be given only once"}),
    ("sort_repeated", "sort=title&sort=-rating", {"sort": "must be given only once"}),
    ("limit_repeated", "limit=5&limit=6", {"limit": "must be given only once"}),
    ("page_repeated", "page=1&page=2", {"page": "must be given only once"}),
    ("cursor_repeated", "cursor=a&cursor=b", {"cursor": "must be given only once"}),
    ("two_repeated", "genre=Drama&limit=5&genre=Drama&limit=5",
     {"genre": "must be given only once", "limit": "must be given only once"}),
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
    assert "sort=title" in cursor_query
    response = api("GET", f"/api/movies?{cursor_query.replace('sort=title', 'sort=-rating')}", alice)
    assert response.status == 400
    assert response.json()["fields"] == {"cursor": "was made for sort=title, not sort=-rating"}
