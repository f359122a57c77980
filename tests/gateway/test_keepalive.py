"""Keep-alive after the gateway's own errors: several requests on one client connection.

http.client runs in a worker thread, so the gateway keeps serving on the test's
event loop. http.client closes its socket after a response with
`Connection: close`, so an unchanged local port means one connection.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import time
from dataclasses import dataclass

import pytest

from gateway_srv import proxy
from tests.support.test_issuer import TestIssuer

ROUTES = """
[downstreams.svc]
hosts = ["{echo}"]

[[routes]]
name = "private"
upstream_path = "/private/{{*rest}}"
downstream_path = "/api/{{rest}}"
downstream = "svc"

[routes.authentication]
scopes = ["movieAPI"]

[[routes]]
name = "limited"
upstream_path = "/limited/{{*rest}}"
downstream_path = "/api/{{rest}}"
downstream = "svc"

[routes.rate_limit]
window = 60
per_address = 1

[[routes]]
name = "open"
upstream_path = "/open/{{*rest}}"
upstream_methods = ["GET"]
downstream_path = "/api/{{rest}}"
downstream = "svc"
"""


@dataclass
class Exchange:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    # The client's port of the connection, or None once http.client has closed it.
    local_port: int | None


class Client:
    """One http.client connection to the gateway."""

    def __init__(self, url: str):
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=10)

    def _send(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> Exchange:
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        sock = self.connection.sock
        return Exchange(response.status, response.headers, data, sock.getsockname()[1] if sock else None)

    async def send(self, method: str, path: str, headers: dict[str, str] | None = None,
                   body: bytes | None = None) -> Exchange:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._send, method, path, headers or {}, body)

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def issuer():
    running = TestIssuer().start()
    yield running
    running.stop()


@pytest.fixture
def client():
    clients: list[Client] = []

    def connect(url: str) -> Client:
        clients.append(Client(url))
        return clients[-1]

    yield connect
    for opened in clients:
        opened.close()


def assert_kept_open(exchange: Exchange) -> None:
    assert exchange.headers.get("Connection") is None
    assert exchange.local_port is not None


@pytest.mark.gen_test
async def test_401_keeps_connection(start_gateway, echo, issuer, client):
    gateway = await start_gateway(ROUTES.format(echo=echo.url), ISSUER=issuer.url)
    connection = client(gateway.url)

    rejected = await connection.send("GET", "/private/1")
    assert rejected.status == 401
    assert rejected.headers["WWW-Authenticate"] == 'Bearer realm="gateway"'
    assert_kept_open(rejected)

    accepted = await connection.send("GET", "/private/1", {"Authorization": f"Bearer {issuer.sign()}"})
    assert accepted.status == 200
    assert accepted.local_port == rejected.local_port
    assert echo.seen == ["/api/1"]


@pytest.mark.gen_test
async def test_429_keeps_connection(start_gateway, echo, client):
    gateway = await start_gateway(ROUTES.format(echo=echo.url))
    connection = client(gateway.url)

    first = await connection.send("GET", "/limited/1")
    assert first.status == 200
    limited = await connection.send("GET", "/limited/2")
    assert limited.status == 429
    assert_kept_open(limited)

    after = await connection.send("GET", "/open/3")
    assert after.status == 200
    assert first.local_port == limited.local_port == after.local_port
    assert echo.seen == ["/api/1", "/api/3"]


@pytest.mark.gen_test
async def test_route_errors_keep_connection(start_gateway, echo, client):
    gateway = await start_gateway(ROUTES.format(echo=echo.url))
    connection = client(gateway.url)
    ports = []
    for method, path, status in [("GET", "/nowhere", 404), ("DELETE", "/open/1", 405),
                                 ("GET", "/open/%2e%2e/x", 400), ("GET", "/open/1", 200)]:
        exchange = await connection.send(method, path)
        assert exchange.status == status, path
        assert_kept_open(exchange)
        ports.append(exchange.local_port)
    assert len(set(ports)) == 1
    assert echo.seen == ["/api/1"]


@pytest.mark.gen_test
async def test_empty_body_keeps_connection(start_gateway, echo, issuer, client):
    gateway = await start_gateway(ROUTES.format(echo=echo.url), ISSUER=issuer.url)
    connection = client(gateway.url)
    rejected = await connection.send("POST", "/private/1", {"Content-Length": "0"}, b"")
    assert rejected.status == 401
    assert_kept_open(rejected)
    accepted = await connection.send("GET", "/private/1", {"Authorization": f"Bearer {issuer.sign()}"})
    assert accepted.status == 200
    assert accepted.local_port == rejected.local_port


def read_until_closed(port: int, request: bytes) -> bytes:
    """Send `request` on a new connection and return all the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


@pytest.mark.gen_test
async def test_small_rejected_body_keeps_connection(start_gateway, echo, issuer, client):
    gateway = await start_gateway(ROUTES.format(echo=echo.url), ISSUER=issuer.url)
    connection = client(gateway.url)
    small_json = b'{"title": "' + b"x" * 1000 + b'"}'

    unauthenticated = await connection.send("POST", "/private/1", {"Content-Type": "application/json"},
                                            small_json)
    not_allowed = await connection.send("PUT", "/open/1", {"Content-Type": "application/json"}, small_json)
    accepted = await connection.send("POST", "/private/1", {"Authorization": f"Bearer {issuer.sign()}"},
                                     small_json)

    assert unauthenticated.status == 401
    assert_kept_open(unauthenticated)
    assert not_allowed.status == 405
    assert_kept_open(not_allowed)
    assert accepted.status == 200
    assert unauthenticated.local_port == not_allowed.local_port == accepted.local_port
    assert echo.seen == ["/api/1"]


REQUESTS_WITH_UNREAD_BODY = [
    # (case id, request bytes, expected status line)
    ("body_past_discard_limit", b"POST /private/1 HTTP/1.1\r\nHost: gw\r\nContent-Length: 70000\r\n\r\n",
     b"HTTP/1.1 401 "),
    ("unauthenticated_chunked",
     b"POST /private/1 HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     b"HTTP/1.1 401 "),
    ("declared_too_large", b"POST /limited/1 HTTP/1.1\r\nHost: gw\r\nContent-Length: 99999999\r\n\r\n",
     b"HTTP/1.1 413 "),
    ("method_unknown_to_tornado", b"TRACE /open/1 HTTP/1.1\r\nHost: gw\r\n\r\n", b"HTTP/1.1 405 "),
]


@pytest.mark.parametrize("request_bytes,status_line", [case[1:] for case in REQUESTS_WITH_UNREAD_BODY],
                         ids=[case[0] for case in REQUESTS_WITH_UNREAD_BODY])
@pytest.mark.gen_test
async def test_close_announced_with_connection_close(start_gateway, echo, issuer, request_bytes, status_line):
    gateway = await start_gateway(ROUTES.format(echo=echo.url), ISSUER=issuer.url)
    port = int(gateway.url.rsplit(":", 1)[1])
    loop = asyncio.get_running_loop()
    received = await loop.run_in_executor(None, read_until_closed, port, request_bytes)
    head = received.split(b"\r\n\r\n", 1)[0]
    assert head.startswith(status_line)
    assert b"\r\nConnection: close" in head
    assert echo.seen == []


@pytest.mark.parametrize("content_length", [b"\xb2", b"9" * 5000], ids=["superscript-two", "5000-digits"])
@pytest.mark.parametrize("path", [b"/nowhere", b"/open/1", b"/private/1"])
@pytest.mark.gen_test
async def test_odd_content_length_is_no_server_error(start_gateway, echo, issuer, path, content_length):
    gateway = await start_gateway(ROUTES.format(echo=echo.url), ISSUER=issuer.url)
    port = int(gateway.url.rsplit(":", 1)[1])
    request = b"POST " + path + b" HTTP/1.1\r\nHost: gw\r\nContent-Length: " + content_length + b"\r\n\r\n"
    received = await asyncio.get_running_loop().run_in_executor(None, read_until_closed, port, request)
    status_line = received.split(b"\r\n", 1)[0]
    assert status_line.split(b" ")[1] in (b"400", b"401", b"404", b"405"), status_line
    assert echo.seen == []


@pytest.mark.gen_test
async def test_expect_continue_is_refused_without_continue(start_gateway, echo, issuer):
    gateway = await start_gateway(ROUTES.format(echo=echo.url), ISSUER=issuer.url)
    port = int(gateway.url.rsplit(":", 1)[1])
    request = (b"POST /private/1 HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    received = await asyncio.get_running_loop().run_in_executor(None, read_until_closed, port, request)
    # No "100 Continue": the client would send a body only to have it dropped.
    assert received.startswith(b"HTTP/1.1 401 ")
    assert b"\r\nConnection: close" in received.split(b"\r\n\r\n", 1)[0]


@pytest.mark.gen_test
async def test_unsent_small_body_closes_after_timeout(start_gateway, echo, issuer, monkeypatch):
    monkeypatch.setattr(proxy, "_DISCARD_TIMEOUT", 0.5)
    gateway = await start_gateway(ROUTES.format(echo=echo.url), ISSUER=issuer.url)
    port = int(gateway.url.rsplit(":", 1)[1])
    request = b"POST /private/1 HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\n"
    started = time.monotonic()
    received = await asyncio.get_running_loop().run_in_executor(None, read_until_closed, port, request)
    # The refused request's body never came: the connection ends without a response.
    assert received == b""
    assert time.monotonic() - started < 5
