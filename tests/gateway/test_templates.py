"""Path templates: parsing, matching raw paths, ordering and expansion."""

from __future__ import annotations

import pytest

from gateway_srv.templates import PathTemplate, TemplateError, has_dot_segment


@pytest.mark.parametrize("template, path, expected", [
    ("/movies", "/movies", {}),
    ("/movies", "/movies/", None),
    ("/movies", "/Movies", None),
    ("/movies", "/mo%76ies", None),
    ("/movies/{id}", "/movies/42", {"id": "42"}),
    ("/movies/{id}", "/movies/a%2Fb", {"id": "a%2Fb"}),
    ("/movies/{id}", "/movies/a%20b", {"id": "a%20b"}),
    ("/movies/{id}", "/movies/", None),
    ("/movies/{id}", "/movies/1/2", None),
    ("/movies/{id}", "/movies", None),
    ("/files/{*rest}", "/files/a/b%2Fc", {"rest": "a/b%2Fc"}),
    ("/files/{*rest}", "/files/", {"rest": ""}),
    ("/files/{*rest}", "/files", {"rest": ""}),
    ("/{kind}/{id}/edit", "/movies/7/edit", {"kind": "movies", "id": "7"}),
    ("/", "/", {}),
    ("/", "/x", None),
], ids=lambda value: str(value))
def test_match_raw_path(template, path, expected):
    assert PathTemplate.parse(template).match(path) == expected


def test_expand_inserts_raw_values():
    template = PathTemplate.parse("/api/movies/{id}/{*rest}")
    assert template.expand({"id": "a%2Fb", "rest": "x/y%20z"}) == "/api/movies/a%2Fb/x/y%20z"


def test_specificity_orders_literal_first():
    texts = ["/{*all}", "/movies/{*rest}", "/{kind}/special", "/movies/{id}", "/movies/special", "/movies"]
    ordered = sorted((PathTemplate.parse(t) for t in texts), key=lambda t: t.specificity)
    assert [t.text for t in ordered] == [
        "/movies/special", "/movies/{id}", "/movies", "/movies/{*rest}", "/{kind}/special", "/{*all}",
    ]


def test_shape_ignores_placeholder_names():
    assert PathTemplate.parse("/movies/{id}").shape == PathTemplate.parse("/movies/{movie}").shape
    assert PathTemplate.parse("/movies/{id}").shape != PathTemplate.parse("/movies/{*id}").shape


@pytest.mark.parametrize("text", [
    "movies",
    "/movies//x",
    "/movies/{*rest}/x",
    "/movies/{id}/{id}",
    "/movies/{1d}",
    "/movies/x{id}",
    "/movies/..",
    "/movies/%2e",
    "/movies/a?b",
], ids=["no leading slash", "empty segment", "catch-all not last", "duplicate name", "bad name",
        "partial placeholder", "dot-dot literal", "encoded dot literal", "query character"])
def test_parse_rejects(text):
    with pytest.raises(TemplateError):
        PathTemplate.parse(text)


@pytest.mark.parametrize("path, expected", [
    ("/movies/..", True),
    ("/movies/%2E%2e/x", True),
    ("/movies/./x", True),
    ("/movies/...", False),
    ("/movies/a..b", False),
    ("/movies/%2F", False),
])
def test_dot_segments(path, expected):
    assert has_dot_segment(path) is expected
