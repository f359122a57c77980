"""Property-based tests of the parsers at the edge: any input gets a 4xx protocol error, never a 500.

Unit-level properties call the parsers directly with many examples. One HTTP-level
property per service sends a bounded number of generated requests to the real
processes and checks the status is below 500; for the movies API it also checks
that a 4xx left the stored movie unchanged.
"""

from __future__ import annotations

import base64
import json
import string

import pytest
import requests
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tornado.httputil import (
    HTTPHeaders,
    HTTPInputError,
    HTTPServerRequest,
    RequestStartLine,
)

from gateway_srv.forwarding import (
    FORWARDED_FIELDS,
    HOP_BY_HOP,
    downstream_request_headers,
)
from gateway_srv.templates import PathTemplate, TemplateError, has_dot_segment
from identity_srv.authorization import (
    AuthorizationError,
    AuthorizationRequest,
    InvalidAuthorizationTarget,
    parse_authorization_request,
)
from identity_srv.client_auth import Credentials, read_credentials
from identity_srv.clients import load_registry
from identity_srv.forms import parse_form
from movies_srv.model import EDITABLE_FIELDS, validate_movie
from servicekit.errors import HttpProblem
from tests.support.processes import ROOT

from .conftest import DEMO_SECRET, MACHINE_CLIENT, signed_in_tokens

FORM_HEADERS = HTTPHeaders({"Content-Type": "application/x-www-form-urlencoded"})
AUTHORIZATION_PARAMETERS = ["client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
                            "code_challenge", "code_challenge_method", "prompt", "max_age", "response_mode",
                            "request", "login_hint", "ui_locales", "id_token_hint"]
REGISTERED_REDIRECT = "http://localhost:5002/signin-oidc"
HTTP_EXAMPLES = 50
# Printable ASCII without CR and LF: what an HTTP client can put in a header value.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=60)
TOKEN_NAME = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=20)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
movie_like = st.dictionaries(
    st.sampled_from([*EDITABLE_FIELDS, "id", "owner", "version", "extra"]) | st.text(max_size=12),
    json_values | st.sampled_from(["2020-01-01", "Drama", 5, 7.5, "https://example.com/a.png"]),
    max_size=7,
)


def assert_client_error(exc: HttpProblem) -> None:
    assert 400 <= exc.status < 500
    assert exc.error


@pytest.fixture(scope="module")
def registry():
    return load_registry(ROOT / "conf" / "clients.toml")


# -- token endpoint form and client authentication --------------------------

@given(st.binary(max_size=400) | st.text(max_size=200).map(lambda text: text.encode("utf-8")))
@settings(max_examples=500, deadline=None)
def test_parse_form_any_body(body):
    # RFC 6749 §5.2: a malformed request is invalid_request, whatever the bytes.
    try:
        form = parse_form(FORM_HEADERS, body)
    except HttpProblem as exc:
        assert_client_error(exc)
        return
    assert all(isinstance(name, str) and isinstance(value, str) and value for name, value in form.items())


@given(st.lists(st.tuples(st.sampled_from(["grant_type", "code", "client_id", "scope", "x"]) | st.text(max_size=8),
                          st.text(max_size=20)), max_size=10))
@settings(max_examples=300, deadline=None)
def test_parse_form_repeated_names(pairs):
    # RFC 6749 §3.2: parameters must not be included more than once.
    from urllib.parse import urlencode

    body = urlencode(pairs).encode("ascii")
    names = [name for name, _ in pairs]
    try:
        form = parse_form(FORM_HEADERS, body)
    except HttpProblem as exc:
        assert_client_error(exc)
        return
    assert len(names) == len(set(names))
    assert set(form) <= set(names)


@given(HEADER_TEXT | st.binary(max_size=60).map(lambda raw: "Basic " + base64.b64encode(raw).decode()),
       st.dictionaries(st.sampled_from(["client_id", "client_secret", "grant_type"]), st.text(max_size=20)))
@settings(max_examples=500, deadline=None)
def test_read_credentials_any_header(authorization, form):
    # RFC 6749 §2.3.1 and §5.2: unusable credentials are invalid_client or invalid_request, never a crash.
    headers = HTTPHeaders({"Authorization": authorization}) if authorization else HTTPHeaders()
    form = {name: value for name, value in form.items() if value}
    try:
        credentials = read_credentials(headers, form)
    except HttpProblem as exc:
        assert_client_error(exc)
        assert exc.error in ("invalid_client", "invalid_request")
        return
    assert isinstance(credentials, Credentials)


# -- authorization request ---------------------------------------------------

authorization_arguments = st.dictionaries(
    st.sampled_from(AUTHORIZATION_PARAMETERS) | st.text(max_size=10),
    st.lists(st.sampled_from(["movies_mvc_client", "movieClient", REGISTERED_REDIRECT, "code", "S256", "plain",
                              "openid movieAPI", "none", "login", "-1", "0"]) | st.text(max_size=50),
             min_size=1, max_size=3),
    max_size=12,
)


@given(authorization_arguments)
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_authorization_request_never_open_redirect(registry, arguments):
    # RFC 9700 §4.11 and RFC 6749 §4.1.2.1: errors redirect only to a registered redirect URI.
    try:
        request = parse_authorization_request(registry, arguments)
    except InvalidAuthorizationTarget:
        return
    except AuthorizationError as exc:
        assert exc.redirect_uri in registry.clients[arguments["client_id"][0]].redirect_uris
        assert exc.error in {"invalid_request", "unauthorized_client", "unsupported_response_type",
                             "invalid_scope", "access_denied", "request_not_supported", "login_required",
                             "consent_required", "interaction_required"}
        return
    assert isinstance(request, AuthorizationRequest)
    assert request.redirect_uri in registry.clients[request.client_id].redirect_uris


# -- gateway route matcher and headers ---------------------------------------

PATH_SEGMENT = st.sampled_from(["movies", "things", "..", ".", "%2e%2e", "%2F", "a%2Fb", "", "x"]) | st.text(
    string.ascii_letters + string.digits + "-._~%", max_size=8)


@given(st.lists(PATH_SEGMENT, max_size=6).map(lambda parts: "/" + "/".join(parts)))
@settings(max_examples=1000, deadline=None)
def test_route_match_stays_under_downstream(path):
    # RFC 3986 §5.2.4: after the gateway's dot-segment check, an expanded path cannot leave its prefix.
    assume(not has_dot_segment(path))
    for upstream, downstream in (("/things/{*rest}", "/api/things/{rest}"), ("/items/{id}", "/api/items/{id}")):
        values = PathTemplate.parse(upstream).match(path)
        if values is None:
            continue
        expanded = PathTemplate.parse(downstream).expand(values)
        prefix = downstream.split("{")[0]
        assert expanded.startswith(prefix)
        assert not has_dot_segment(expanded)
        if upstream == "/items/{id}":
            assert "/" not in values["id"]


@given(st.text(max_size=40))
@settings(max_examples=500, deadline=None)
def test_template_parse_any_text(text):
    # A bad route file stops the gateway with a TemplateError, never another exception.
    try:
        template = PathTemplate.parse(text)
    except TemplateError:
        return
    assert template.text == text


def server_request(pairs: list[tuple[str, str]]) -> HTTPServerRequest:
    """Build the request Tornado would hand the gateway; header sets Tornado itself refuses are skipped."""
    headers = HTTPHeaders({"Host": "gateway.test"})
    try:
        for name, value in pairs:
            headers.add(name, value)
        request = HTTPServerRequest(start_line=RequestStartLine("GET", "/things/a", "HTTP/1.1"), headers=headers)
    except HTTPInputError:
        assume(False)
    request.remote_ip = "192.0.2.7"
    return request


header_pairs = st.lists(st.tuples(
    st.sampled_from(["Connection", "X-Client-Id", "X-Forwarded-For", "Forwarded", "Keep-Alive", "TE",
                     "Transfer-Encoding", "Upgrade", "Proxy-Authorization", "X-Request-Id", "X-Other"])
    | TOKEN_NAME, HEADER_TEXT.map(lambda value: value.strip() or "v")), max_size=10)


@given(header_pairs)
@settings(max_examples=500, deadline=None)
def test_downstream_headers_drop_hop_and_spoofed(pairs):
    # RFC 9110 §7.6.1 and RFC 7239 §8: hop-by-hop fields go, the gateway's own fields replace the client's.
    request = server_request(pairs)
    sent = downstream_request_headers(request, "rid-1", False, {"X-Client-Id": "movieClient"})
    names = [name.lower() for name, _ in sent]
    connection_named = {token.strip().lower() for name, value in pairs if name.lower() == "connection"
                        for token in value.split(",")}
    assert not (set(names) & HOP_BY_HOP)
    for field in FORWARDED_FIELDS | {"x-request-id", "x-client-id"}:
        assert names.count(field) == 1
    values = {name.lower(): value for name, value in sent}
    assert values["x-client-id"] == "movieClient"
    assert values["x-forwarded-for"] == "192.0.2.7"
    client_names = {name.lower() for name, _ in pairs}
    for name in connection_named & client_names - FORWARDED_FIELDS - {"x-request-id", "x-client-id"}:
        assert name not in names


# -- movies API JSON -----------------------------------------------------------

@given(json_values | movie_like, st.booleans())
@settings(max_examples=1000, deadline=None)
def test_validate_movie_any_json(body, partial):
    # RFC 9110 §15.5.1: invalid bodies are 400 with the fields named; valid ones keep only editable fields.
    try:
        fields = validate_movie(body, partial=partial, current={"owner": "1"})
    except HttpProblem as exc:
        assert exc.status == 400
        assert exc.error == "invalid_request"
        return
    assert set(fields) <= set(EDITABLE_FIELDS)


# -- HTTP-level properties against the real processes --------------------------

form_fields = st.dictionaries(
    st.sampled_from(["grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope", "client_id",
                     "client_secret", "token"]) | st.text(max_size=8),
    st.sampled_from(["authorization_code", "refresh_token", "client_credentials", "password", "movieAPI"])
    | st.text(max_size=30),
    max_size=6,
)


@given(form_fields, st.sampled_from(["/connect/token", "/connect/introspect", "/connect/revocation"]),
       st.booleans())
@settings(max_examples=HTTP_EXAMPLES, deadline=None)
def test_identity_endpoints_any_form(stack, fields, path, authenticated):
    # RFC 6749 §5.2, RFC 7662 §2.3, RFC 7009 §2.2.1: any form gets a 2xx or a 4xx error, never 5xx.
    auth = (MACHINE_CLIENT, DEMO_SECRET) if authenticated else None
    response = requests.post(f"{stack.issuer}{path}", data=fields, auth=auth, timeout=15)
    assert response.status_code < 500, response.text[:200]
    if response.status_code >= 400:
        assert response.json()["error"]


@given(authorization_arguments)
@settings(max_examples=HTTP_EXAMPLES, deadline=None)
def test_authorize_endpoint_any_query(stack, arguments):
    # RFC 6749 §4.1.2.1: any authorization request gets a page or a redirect to a registered URI, never 5xx.
    params = [(name, value) for name, values in arguments.items() for value in values]
    response = requests.get(f"{stack.issuer}/connect/authorize", params=params, allow_redirects=False, timeout=15)
    assert response.status_code < 500
    if response.status_code in (302, 303):
        location = response.headers["Location"]
        assert location.startswith(("/account/", "/connect/", stack.redirect_uri, "http://127.0.0.1:9/"))


@given(st.lists(PATH_SEGMENT, max_size=4).map(lambda parts: "/" + "/".join(parts)),
       st.lists(st.tuples(TOKEN_NAME, HEADER_TEXT), max_size=4),
       st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]))
@settings(max_examples=HTTP_EXAMPLES, deadline=None)
def test_gateway_any_path_and_headers(stack, path, pairs, method):
    # RFC 9110 §15.5: whatever path and headers, the gateway returns a status below 500 while its downstream is up.
    headers = {name: value.strip() for name, value in pairs if name.lower() not in ("content-length", "host")}
    try:
        response = requests.request(method, f"{stack.gateway.url}{path}", headers=headers, timeout=15)
    except requests.exceptions.InvalidHeader:
        assume(False)
    assert response.status_code < 500, (path, headers, response.status_code)


@pytest.fixture(scope="module")
def movie(stack):
    """A movie bob owns, created through the API, with his token."""
    _, tokens = signed_in_tokens(stack, "bob")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    created = requests.post(f"{stack.movies.url}/api/movies", headers=headers, timeout=15, json={
        "title": "Property target", "genre": "Drama", "rating": 7, "releaseDate": "2001-02-03"})
    assert created.status_code == 201, created.text
    return created.json()["id"], headers


@given(json_values | movie_like, st.sampled_from(["PUT", "PATCH", "POST"]))
@settings(max_examples=HTTP_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_movies_api_any_json(stack, movie, body, method):
    # RFC 9110 §15.5.1: bad JSON bodies get 4xx and leave the stored movie and the collection as they were.
    movie_id, headers = movie
    url = f"{stack.movies.url}/api/movies/{movie_id}" if method != "POST" else f"{stack.movies.url}/api/movies"
    before = requests.get(f"{stack.movies.url}/api/movies/{movie_id}", headers=headers, timeout=15).json()
    count_before = len(requests.get(f"{stack.movies.url}/api/movies", headers=headers, timeout=15).json())
    content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
    response = requests.request(method, url, data=json.dumps(body),
                                headers={**headers, "Content-Type": content_type, "If-Match": f'"{before["version"]}"'},
                                timeout=15)
    assert response.status_code < 500, response.text[:200]
    if response.status_code >= 400:
        after = requests.get(f"{stack.movies.url}/api/movies/{movie_id}", headers=headers, timeout=15).json()
        count_after = len(requests.get(f"{stack.movies.url}/api/movies", headers=headers, timeout=15).json())
        assert after == before
        assert count_after == count_before
