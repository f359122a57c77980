"""Oversized and deeply nested input (RFC 9110 §15.5.14, §15.5.15; RFC 6585 §5; RFC 8259 §9)."""

from __future__ import annotations

import json

import requests

from .conftest import (
    DEMO_SECRET,
    MACHINE_CLIENT,
    Attacker,
    raw_request,
    signed_in_tokens,
)

# servicekit's default http.max_body_bytes.
MAX_BODY = 1_048_576


def auth_headers(stack) -> dict[str, str]:
    """Return headers with an access token of bob, whose admin role may write movies."""
    _, tokens = signed_in_tokens(stack, "bob")
    return {"Authorization": f"Bearer {tokens['access_token']}", "Content-Type": "application/json"}


def test_token_endpoint_oversized_form(stack):
    # RFC 9110 §15.5.14: a body past the limit gets 413, not a parse of a megabyte of form.
    body = "grant_type=client_credentials&scope=" + "a" * (MAX_BODY + 10)
    response = requests.post(f"{stack.issuer}/connect/token", data=body, auth=(MACHINE_CLIENT, DEMO_SECRET),
                             headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    assert response.status_code == 413


def test_token_endpoint_long_scope(stack):
    # RFC 6749 §5.2: a scope of thousands of unknown names is invalid_scope, 400.
    response = requests.post(f"{stack.issuer}/connect/token", auth=(MACHINE_CLIENT, DEMO_SECRET), timeout=30,
                             data={"grant_type": "client_credentials", "scope": " ".join(["x"] * 20_000)})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_movies_oversized_json(stack):
    # RFC 9110 §15.5.14: the movies API refuses a body past its limit with 413.
    body = json.dumps({"title": "t" * (MAX_BODY + 10)})
    response = requests.post(f"{stack.movies.url}/api/movies", data=body, headers=auth_headers(stack), timeout=30)
    assert response.status_code == 413


def test_movies_deeply_nested_json(stack):
    # RFC 8259 §9: a parser may limit nesting depth; the response is a 400, never a crash or 500.
    body = "[" * 100_000 + "]" * 100_000
    response = requests.post(f"{stack.movies.url}/api/movies", data=body, headers=auth_headers(stack), timeout=30)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_movies_nested_object_field(stack):
    # RFC 8259 §9: nesting inside a field is refused by validation as well.
    nested: object = "x"
    for _ in range(500):
        nested = {"a": nested}
    body = json.dumps({"title": nested, "genre": "g", "rating": 1, "releaseDate": "2020-01-01"})
    response = requests.post(f"{stack.movies.url}/api/movies", data=body, headers=auth_headers(stack), timeout=30)
    assert response.status_code == 400


def test_gateway_oversized_body(stack):
    # RFC 9110 §15.5.14: the gateway stops an oversized body before forwarding it.
    body = b"x" * (MAX_BODY * 5)
    response = requests.post(f"{stack.gateway.url}/movies", data=body, headers=auth_headers(stack), timeout=30)
    assert response.status_code == 413


def test_huge_header_refused(stack):
    # RFC 6585 §5: header fields that are too large get 431 (or the connection is closed), never a 500.
    for service in stack.services():
        reply = raw_request(service.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        status_line = reply.split(b"\r\n", 1)[0]
        assert status_line in (b"", b"HTTP/1.1 431 Request Header Fields Too Large"), (service.package, status_line)


def test_authorize_huge_query(stack):
    # RFC 9110 §15.5.15: an overlong URI gets 414 or a 4xx error page, never a redirect or 500.
    response = Attacker(stack).authorize(state="s" * 60_000)
    assert 400 <= response.status_code < 500 or response.status_code == 302
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/account/login") or "error=" in response.headers["Location"]
