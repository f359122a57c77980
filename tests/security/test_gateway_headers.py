"""Header injection and spoofing through the gateway (RFC 9110 §7.6.1, RFC 9112 §6.1, §11.2; RFC 7239 §8)."""

from __future__ import annotations

import requests

from .conftest import machine_token, raw_request


def echoed(response: requests.Response) -> dict[str, list[str]]:
    assert response.status_code == 200, response.text[:300]
    headers: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        headers.setdefault(name.lower(), []).append(value)
    return headers


def call(stack, echo_gateway, headers: dict[str, str] | None = None, path: str = "/things/a") -> requests.Response:
    all_headers = {"Authorization": f"Bearer {machine_token(stack)}", **(headers or {})}
    return requests.get(f"{echo_gateway.gateway.url}{path}", headers=all_headers, timeout=15)


def test_claim_header_cannot_be_spoofed(stack, echo_gateway):
    # RFC 9110 §7.6.1 trust boundary: a header the gateway derives from the token replaces the client's.
    headers = echoed(call(stack, echo_gateway, {"X-Client-Id": "admin-client", "X-User-Role": "admin"}))
    assert headers["x-client-id"] == ["movieClient"]
    assert "x-user-role" not in headers


def test_connection_cannot_strip_claim_header(stack, echo_gateway):
    # RFC 9110 §7.6.1: fields named in Connection are hop-by-hop, but that must not drop what the gateway adds.
    headers = echoed(call(stack, echo_gateway, {"Connection": "X-Client-Id, X-Forwarded-For"}))
    assert headers["x-client-id"] == ["movieClient"]
    assert headers["x-forwarded-for"] == ["127.0.0.1"]


def test_hop_by_hop_request_fields_removed(stack, echo_gateway):
    # RFC 9110 §7.6.1: a proxy removes the fields named in Connection before forwarding.
    headers = echoed(call(stack, echo_gateway, {"Connection": "X-Secret-Hop", "X-Secret-Hop": "1"}))
    assert "x-secret-hop" not in headers


def test_forwarded_for_not_trusted(stack, echo_gateway):
    # RFC 7239 §8.1: without a trusted proxy in front, client-sent forwarding fields are replaced.
    headers = echoed(call(stack, echo_gateway, {"X-Forwarded-For": "10.0.0.1", "Forwarded": "for=10.0.0.1",
                                                "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}))
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert headers["x-forwarded-proto"] == ["http"]
    assert "evil.example" not in headers["x-forwarded-host"][0]
    assert headers["forwarded"][0].startswith('for="127.0.0.1"') or headers["forwarded"][0].startswith("for=127.0.0.1")


def test_unsafe_request_id_replaced(stack, echo_gateway):
    # Log injection: a client's X-Request-Id that is not a plain token is replaced before logging or forwarding.
    unsafe = "a" * 300 + " user=admin status=200"
    response = call(stack, echo_gateway, {"X-Request-Id": unsafe})
    headers = echoed(response)
    assert headers["x-request-id"] != [unsafe]
    assert headers["x-request-id"] == [response.headers["X-Request-Id"]]
    assert unsafe not in echo_gateway.gateway.log()


def test_hop_by_hop_response_fields_removed(stack, echo_gateway):
    # RFC 9110 §7.6.1: the downstream's Connection-named fields do not reach the client.
    response = call(stack, echo_gateway)
    assert "X-Private" not in response.headers


def test_crlf_in_header_value_refused(stack, echo_gateway):
    # RFC 9110 §5.5: CR or LF inside a field value is invalid; nothing is smuggled downstream.
    token = machine_token(stack)
    before = len(echo_gateway.echo.paths)
    reply = raw_request(echo_gateway.gateway.url, (
        f"GET /things/a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "X-Test: a\rX-Injected: 1\r\nConnection: close\r\n\r\n").encode())
    assert reply.split(b"\r\n", 1)[0] in (b"", b"HTTP/1.1 400 Bad Request")
    assert len(echo_gateway.echo.paths) == before


def test_content_length_and_chunked_refused(stack, echo_gateway):
    # RFC 9112 §6.1 and §11.2: Content-Length with Transfer-Encoding is a smuggling attempt, refused with 400.
    token = machine_token(stack)
    before = len(echo_gateway.echo.paths)
    reply = raw_request(echo_gateway.gateway.url, (
        f"POST /things/a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 4\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nGET /things/b HTTP/1.1\r\nHost: x\r\n\r\n"
    ).encode())
    assert reply.split(b"\r\n", 1)[0] in (b"", b"HTTP/1.1 400 Bad Request")
    assert len(echo_gateway.echo.paths) == before


def test_duplicate_authorization_refused(stack, echo_gateway):
    # RFC 6750 §2.1 and RFC 9110 §5.3: two Authorization fields are an invalid request, not a choice.
    token = machine_token(stack)
    reply = raw_request(echo_gateway.gateway.url, (
        f"GET /things/a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nAuthorization: Bearer other\r\n"
        "Connection: close\r\n\r\n").encode())
    assert reply.startswith(b"HTTP/1.1 400 ")
