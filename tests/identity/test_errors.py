"""Every error the token, introspection and revocation endpoints emit: status, headers, body.

Each table row is one request that must fail, named by why it fails. All rows run
against one real identity_srv process.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import pytest

from tests.support.identity import basic_authorization, client_credentials_token

MOVIE_CLIENT = basic_authorization("movieClient", "secret")
WEB_CLIENT = basic_authorization("movies_mvc_client", "secret")
REPORT_CLIENT = basic_authorization("reportClient", "secret")
FORM = "application/x-www-form-urlencoded"
CHALLENGE = 'Basic realm="identity_srv", charset="UTF-8"'


@dataclass
class Case:
    path: str
    # A dict or list is form-encoded; bytes are sent as they are.
    body: dict | list | bytes
    headers: list[tuple[str, str]] = field(default_factory=lambda: [("Authorization", MOVIE_CLIENT)])
    content_type: str | None = FORM


def send(base_url: str, case: Case, method: str = "POST") -> tuple[int, http.client.HTTPMessage, bytes]:
    """Send the case with http.client, which can repeat a header, and return the response."""
    body = case.body if isinstance(case.body, bytes) else urlencode(case.body).encode("ascii")
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest(method, case.path)
        if case.content_type:
            connection.putheader("Content-Type", case.content_type)
        for name, value in case.headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def error(code: str, description: str) -> dict[str, str]:
    return {"error": code, "error_description": description}


TOKEN = "/connect/token"
INTROSPECT = "/connect/introspect"
REVOKE = "/connect/revocation"
CC = {"grant_type": "client_credentials"}
AUTH_FAILED = error("invalid_client", "client authentication failed")

# (id, case, status, body)
CASES = [
    # invalid_request
    ("fails because grant_type is missing",
     Case(TOKEN, {"scope": "movieAPI"}), 400, error("invalid_request", "parameter 'grant_type' is missing")),
    ("fails because grant_type is empty, which counts as missing",
     Case(TOKEN, b"grant_type="), 400, error("invalid_request", "parameter 'grant_type' is missing")),
    ("fails because grant_type is repeated",
     Case(TOKEN, b"grant_type=client_credentials&grant_type=client_credentials"), 400,
     error("invalid_request", "parameter 'grant_type' is repeated")),
    ("fails because a repeated name has odd characters and is not echoed",
     Case(TOKEN, b"grant_type=client_credentials&%22x=1&%22x=2"), 400,
     error("invalid_request", "parameter (a name with other characters) is repeated")),
    ("fails because the body is JSON",
     Case(TOKEN, b'{"grant_type":"client_credentials"}', content_type="application/json"), 400,
     error("invalid_request", "the request body must be application/x-www-form-urlencoded")),
    ("fails because the content type is missing",
     Case(TOKEN, b"grant_type=client_credentials", content_type=None), 400,
     error("invalid_request", "the request body must be application/x-www-form-urlencoded")),
    ("fails because the form charset is not UTF-8",
     Case(TOKEN, b"grant_type=client_credentials", content_type=FORM + "; charset=ISO-8859-1"), 400,
     error("invalid_request", "the form must be encoded as UTF-8")),
    ("fails because the body has raw non-ASCII bytes",
     Case(TOKEN, "grant_type=client_credentials&scope=é".encode("utf-8")), 400,
     error("invalid_request", "the request body is not a valid form: percent-encode UTF-8 text")),
    ("fails because a percent-escape is not UTF-8",
     Case(TOKEN, b"grant_type=client_credentials&scope=%ff"), 400,
     error("invalid_request", "the request body is not a valid form: percent-encode UTF-8 text")),
    ("fails because the form has an empty field",
     Case(TOKEN, b"grant_type=client_credentials&&scope=movieAPI"), 400,
     error("invalid_request", "the request body is not a valid form: percent-encode UTF-8 text")),
    ("fails because Basic and client_secret_post are used at once",
     Case(TOKEN, {**CC, "client_id": "movieClient", "client_secret": "secret"}), 400,
     error("invalid_request", "the request uses both client_secret_basic and client_secret_post: "
                              "send the credentials once")),
    ("fails because client_id in the form differs from the Basic client",
     Case(TOKEN, {**CC, "client_id": "movies_mvc_client"}), 400,
     error("invalid_request", "client_id in the form differs from the client in the Authorization header")),
    ("fails because the Authorization header is repeated",
     Case(TOKEN, CC, headers=[("Authorization", MOVIE_CLIENT), ("Authorization", MOVIE_CLIENT)]), 400,
     error("invalid_request", "the Authorization header is repeated")),
    ("fails because introspection has no token",
     Case(INTROSPECT, {"token_type_hint": "access_token"}), 400,
     error("invalid_request", "parameter 'token' is missing")),
    ("fails because revocation has no token",
     Case(REVOKE, {}), 400, error("invalid_request", "parameter 'token' is missing")),

    # invalid_client
    ("fails because the Basic secret is wrong",
     Case(TOKEN, CC, headers=[("Authorization", basic_authorization("movieClient", "wrong"))]), 401, AUTH_FAILED),
    ("fails because the posted secret is wrong",
     Case(TOKEN, {**CC, "client_id": "movieClient", "client_secret": "wrong"}, headers=[]), 401, AUTH_FAILED),
    ("fails because the client is unknown",
     Case(TOKEN, CC, headers=[("Authorization", basic_authorization("nobody", "secret"))]), 401, AUTH_FAILED),
    ("fails because the posted secret is empty",
     Case(TOKEN, {**CC, "client_id": "movieClient", "client_secret": ""}, headers=[]), 401, AUTH_FAILED),
    ("fails because the Basic secret is empty",
     Case(TOKEN, CC, headers=[("Authorization", basic_authorization("movieClient", ""))]), 401, AUTH_FAILED),
    ("fails because no credentials are sent",
     Case(TOKEN, CC, headers=[]), 401,
     error("invalid_client", "client authentication is required: use client_secret_basic or client_secret_post")),
    ("fails because the Authorization scheme is Bearer",
     Case(TOKEN, CC, headers=[("Authorization", "Bearer abc")]), 401,
     error("invalid_client", "the Authorization header must use the Basic scheme")),
    ("fails because the Basic credentials are not base64",
     Case(TOKEN, CC, headers=[("Authorization", "Basic !!!")]), 401,
     error("invalid_client", "the Basic credentials are not valid base64 of UTF-8 text")),
    ("fails because the Basic credentials have no colon",
     Case(TOKEN, CC, headers=[("Authorization", "Basic bW92aWVDbGllbnQ=")]), 401,
     error("invalid_client", "the Basic credentials have no ':' between client id and secret")),
    ("fails because a Basic percent-escape is not UTF-8",
     Case(TOKEN, CC, headers=[("Authorization", "Basic bW92aWVDbGllbnQ6JWZm")]), 401,
     error("invalid_client", "the Basic credentials are not valid percent-encoded UTF-8")),
    ("fails because a client id with a colon is unknown",
     Case(TOKEN, CC, headers=[("Authorization", basic_authorization("movie:Client", "secret"))]), 401, AUTH_FAILED),
    ("fails because a non-ASCII client id is unknown",
     Case(TOKEN, {**CC, "client_id": "móvieClient", "client_secret": "secret"}, headers=[]), 401, AUTH_FAILED),
    ("fails because introspection needs client authentication",
     Case(INTROSPECT, {"token": "abc"}, headers=[]), 401,
     error("invalid_client", "client authentication is required: use client_secret_basic or client_secret_post")),
    ("fails because revocation needs the right secret",
     Case(REVOKE, {"token": "abc"}, headers=[("Authorization", basic_authorization("movieClient", "x"))]), 401,
     AUTH_FAILED),

    # unsupported_grant_type, unauthorized_client, invalid_scope
    ("fails because the password grant is not supported",
     Case(TOKEN, {"grant_type": "password", "username": "alice", "password": "alice"}), 400,
     error("unsupported_grant_type", "this grant type is not supported")),
    ("fails because the device grant is not served",
     Case(TOKEN, {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "x"}), 400,
     error("unsupported_grant_type", "this grant type is not supported")),
    ("fails because the web client may not use client_credentials",
     Case(TOKEN, CC, headers=[("Authorization", WEB_CLIENT)]), 400,
     error("unauthorized_client", "the client may not use the client_credentials grant")),
    ("fails because the scope is not granted to the client",
     Case(TOKEN, {**CC, "scope": "movieAPI profile"}), 400,
     error("invalid_scope", "scope 'profile' is not allowed for this client")),
    ("fails because the scope is unknown",
     Case(TOKEN, {**CC, "scope": "adminAPI"}), 400,
     error("invalid_scope", "scope 'adminAPI' is not allowed for this client")),
    ("fails because an identity scope needs a user",
     Case(TOKEN, {**CC, "scope": "openid"}, headers=[("Authorization", REPORT_CLIENT)]), 400,
     error("invalid_scope", "scope 'openid' needs a signed-in user and cannot be granted to a client alone")),
    ("fails because the scope has two spaces in a row",
     Case(TOKEN, {**CC, "scope": "movieAPI  movieAPI"}), 400,
     error("invalid_scope", "scope must be scope names separated by single spaces")),
    ("fails because the scope has a quote character",
     Case(TOKEN, {**CC, "scope": 'movie"API'}), 400,
     error("invalid_scope", "scope must be scope names separated by single spaces")),
]


@pytest.mark.parametrize("case, status, body", [row[1:] for row in CASES], ids=[row[0] for row in CASES])
def test_error_answer(shared_provider, case, status, body):
    code, headers, raw = send(shared_provider.url, case)
    assert code == status
    assert json.loads(raw) == body
    assert headers["Content-Type"] == "application/json; charset=UTF-8"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Pragma"] == "no-cache"
    if status == 401:
        assert headers["WWW-Authenticate"] == CHALLENGE
    else:
        assert "WWW-Authenticate" not in headers


def test_body_over_limit_is_413(shared_provider):
    code, headers, raw = send(shared_provider.url, Case(TOKEN, b"grant_type=client_credentials&x=" + b"a" * 1_048_576))
    assert code == 413
    assert json.loads(raw) == error("request_too_large", "the request body exceeds 1048576 bytes")
    assert headers["Cache-Control"] == "no-store"


def test_get_on_token_endpoint_is_405(shared_provider):
    code, _, raw = send(shared_provider.url, Case(TOKEN, b""), method="GET")
    assert code == 405
    assert json.loads(raw)["error"] == "method_not_allowed"


def test_revoking_another_clients_token_is_invalid_grant(shared_provider):
    token = client_credentials_token(shared_provider.url)
    code, headers, raw = send(shared_provider.url,
                              Case(REVOKE, {"token": token}, headers=[("Authorization", REPORT_CLIENT)]))
    assert code == 400
    assert json.loads(raw) == error("invalid_grant", "the token was issued to another client")
    assert headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."],
                         ids=["fails because it is no JWT", "fails because its parts are not base64",
                              "fails because it is unsigned"])
def test_bad_token_is_inactive_without_detail(shared_provider, token):
    code, _, raw = send(shared_provider.url, Case(INTROSPECT, {"token": token}))
    assert code == 200
    assert json.loads(raw) == {"active": False}


@pytest.mark.parametrize("token", ["not-a-jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."],
                         ids=["no JWT", "unsigned JWT"])
def test_revoking_unknown_token_is_200_empty(shared_provider, token):
    code, headers, raw = send(shared_provider.url, Case(REVOKE, {"token": token}))
    assert code == 200
    assert raw == b""
    assert headers["Cache-Control"] == "no-store"


def test_failed_client_authentication_is_audited_without_secret(shared_provider):
    send(shared_provider.url, Case(TOKEN, CC, headers=[("Authorization", basic_authorization("movieClient", "hunter2-x"))]))
    log = shared_provider.log()
    assert ("identity_srv.audit client authentication failed: client='movieClient' "
            "method=client_secret_basic reason=wrong secret") in log
    assert "hunter2-x" not in log
    assert "Traceback" not in log
