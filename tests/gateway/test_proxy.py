"""Proxying to a real echo server: paths, query, headers, bodies and pooled connections."""

from __future__ import annotations

import asyncio
import hashlib
import json

import aiohttp
import pytest
from tornado.httpclient import AsyncHTTPClient

from .conftest import open_route


async def fetch(url: str, **kwargs):
    return await AsyncHTTPClient().fetch(url, raise_error=False, **kwargs)


def echoed(response) -> dict:
    assert response.code == 200, response.body
    return json.loads(response.body)


def header_values(echo: dict, name: str) -> list[str]:
    return [value for key, value in echo["headers"] if key.lower() == name.lower()]


@pytest.mark.gen_test
async def test_percent_encoding_kept_as_sent(start_gateway, echo):
    gateway = await start_gateway(open_route([echo.url]))
    body = echoed(await fetch(gateway.url + "/things/a%2Fb%20c%2e?q=%41%2B+b&q=2&empty"))
    assert body["uri"] == "/api/things/a%2Fb%20c%2e?q=%41%2B+b&q=2&empty"
    assert body["path"] == "/api/things/a%2Fb%20c%2e"
    assert body["query"] == "q=%41%2B+b&q=2&empty"


@pytest.mark.gen_test
async def test_catch_all_keeps_slashes(start_gateway, echo):
    gateway = await start_gateway(open_route([echo.url], upstream="/files/{*rest}", downstream_path="/store/{rest}"))
    body = echoed(await fetch(gateway.url + "/files/a/b%2F/c%20d"))
    assert body["uri"] == "/store/a/b%2F/c%20d"


@pytest.mark.gen_test
async def test_unknown_path_and_method(start_gateway, echo):
    gateway = await start_gateway(open_route([echo.url], extra='upstream_methods = ["GET"]'))
    missing = await fetch(gateway.url + "/nothing/here")
    assert missing.code == 404
    assert json.loads(missing.body) == {"error": "not_found", "error_description": "no route matches this path"}
    wrong = await fetch(gateway.url + "/things/1", method="DELETE")
    assert wrong.code == 405
    assert wrong.headers["Allow"] == "GET"
    assert json.loads(wrong.body) == {"error": "method_not_allowed",
                                      "error_description": "DELETE is not allowed on this path",
                                      "route": "things"}
    assert echo.seen == []


@pytest.mark.gen_test
async def test_dot_segments_rejected(start_gateway, echo):
    gateway = await start_gateway(open_route([echo.url], upstream="/files/{*rest}", downstream_path="/store/{rest}"))
    response = await fetch(gateway.url + "/files/a/%2e%2e/secret")
    assert response.code == 400
    assert json.loads(response.body)["error"] == "invalid_request"
    assert echo.seen == []


@pytest.mark.gen_test
async def test_hop_by_hop_request_headers_dropped(start_gateway, echo):
    gateway = await start_gateway(open_route([echo.url]))
    response = await fetch(gateway.url + "/things/1", headers={
        "Connection": "keep-alive, X-Secret-Hop",
        "X-Secret-Hop": "must not pass",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Upgrade": "websocket",
        "Proxy-Authorization": "Basic eDp5",
        "X-End-To-End": "passes",
        "Authorization": "Bearer abc",
    })
    body = echoed(response)
    names = {name.lower() for name, _ in body["headers"]}
    for dropped in ("x-secret-hop", "keep-alive", "te", "upgrade", "proxy-authorization"):
        assert dropped not in names
    assert header_values(body, "Connection") == []
    assert header_values(body, "X-End-To-End") == ["passes"]
    assert header_values(body, "Authorization") == ["Bearer abc"]


@pytest.mark.gen_test
async def test_hop_by_hop_response_headers_dropped(start_gateway, echo):
    gateway = await start_gateway(open_route([echo.url]))
    response = await fetch(gateway.url + "/things/custom-headers")
    assert response.code == 200
    assert "X-Private" not in response.headers
    assert "Keep-Alive" not in response.headers
    assert response.headers.get_list("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers["X-Served-By"] == "echo-a"


@pytest.mark.gen_test
async def test_forwarding_headers_set(start_gateway, echo):
    gateway = await start_gateway(open_route([echo.url]))
    host = gateway.url.removeprefix("http://")
    body = echoed(await fetch(gateway.url + "/things/1", headers={
        "X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9", "X-Forwarded-Host": "evil.example"}))
    # Not configured to trust a proxy in front, so the client's own values are replaced.
    assert header_values(body, "X-Forwarded-For") == ["127.0.0.1"]
    assert header_values(body, "X-Forwarded-Proto") == ["http"]
    assert header_values(body, "X-Forwarded-Host") == [host]
    assert header_values(body, "Forwarded") == [f'for=127.0.0.1;host="{host}";proto=http']
    assert header_values(body, "Host") == [echo.url.removeprefix("http://")]


@pytest.mark.gen_test
async def test_forwarding_headers_appended_behind_trusted_proxy(start_gateway, echo):
    gateway = await start_gateway(open_route([echo.url]), GATEWAY__HTTP__TRUST_PROXY_HEADERS="true")
    body = echoed(await fetch(gateway.url + "/things/1", headers={
        "X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9"}))
    assert header_values(body, "X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"]
    assert header_values(body, "Forwarded")[0].startswith("for=203.0.113.9, for=127.0.0.1;")


@pytest.mark.gen_test
async def test_request_id_accepted_or_created(start_gateway, echo):
    gateway = await start_gateway(open_route([echo.url]))
    given = await fetch(gateway.url + "/things/1", headers={"X-Request-Id": "abc-123"})
    assert header_values(echoed(given), "X-Request-Id") == ["abc-123"]
    assert given.headers["X-Request-Id"] == "abc-123"
    unsafe = await fetch(gateway.url + "/things/1", headers={"X-Request-Id": "bad id\u00e9"})
    created = header_values(echoed(unsafe), "X-Request-Id")
    assert len(created) == 1
    assert len(created[0]) == 32
    assert created[0] != "bad id"
    assert unsafe.headers["X-Request-Id"] == created[0]


@pytest.mark.gen_test
async def test_status_headers_body_unchanged(start_gateway, echo):
    gateway = await start_gateway(open_route([echo.url]))
    response = await fetch(gateway.url + "/things/status/418")
    assert response.code == 418
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Server"] == "echo/echo-a"
    assert json.loads(response.body)["uri"] == "/api/things/status/418"


@pytest.mark.gen_test
async def test_head_and_every_method(start_gateway, echo):
    gateway = await start_gateway(open_route([echo.url]))
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        body = b"{}" if method in ("POST", "PUT", "PATCH") else None
        response = await fetch(gateway.url + "/things/1", method=method, body=body,
                               allow_nonstandard_methods=True)
        assert echoed(response)["method"] == method
    head = await fetch(gateway.url + "/things/1", method="HEAD")
    assert head.code == 200
    assert head.body == b""
    assert int(head.headers["Content-Length"]) > 0


@pytest.mark.gen_test
async def test_large_bodies_stream_both_ways(start_gateway, echo):
    gateway = await start_gateway(open_route([echo.url]), GATEWAY__PROXY__MAX_BODY_BYTES="4000000")
    payload = bytes(range(256)) * 12_000
    sent = echoed(await fetch(gateway.url + "/things/upload", method="POST", body=payload,
                              headers={"Content-Type": "application/octet-stream"}))
    assert sent["body_size"] == len(payload)
    assert sent["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert header_values(sent, "Content-Length") == [str(len(payload))]

    async def produce(write):
        for _ in range(10):
            await write(b"z" * 100_000)

    chunked = echoed(await fetch(gateway.url + "/things/upload", method="POST", body_producer=produce))
    assert chunked["body_size"] == 1_000_000
    assert chunked["body_sha256"] == hashlib.sha256(b"z" * 1_000_000).hexdigest()
    large = await fetch(gateway.url + "/things/large")
    assert large.code == 200
    assert large.body == b"x" * 3_000_000


@pytest.mark.gen_test
async def test_body_over_limit_gets_json_413(start_gateway, echo):
    gateway = await start_gateway(open_route([echo.url]), GATEWAY__PROXY__MAX_BODY_BYTES="10000")
    declared = await fetch(gateway.url + "/things/upload", method="POST", body=b"a" * 10_001)
    assert declared.code == 413
    assert json.loads(declared.body) == {"error": "request_too_large",
                                         "error_description": "the request body exceeds 10000 bytes",
                                         "route": "things"}

    async def produce(write):
        for _ in range(5):
            await write(b"b" * 4_000)

    chunked = await fetch(gateway.url + "/things/upload", method="POST", body_producer=produce)
    assert chunked.code == 413
    assert json.loads(chunked.body)["error"] == "request_too_large"
    at_limit = await fetch(gateway.url + "/things/upload", method="POST", body=b"c" * 10_000)
    assert echoed(at_limit)["body_size"] == 10_000


@pytest.mark.gen_test
async def test_downstream_connections_pooled(start_gateway, echo):
    gateway = await start_gateway(open_route([echo.url]))
    async with aiohttp.ClientSession() as client:
        for _ in range(30):
            async with client.get(gateway.url + "/things/1") as response:
                assert response.status == 200
                await response.read()
        results = await asyncio.gather(*(client.get(gateway.url + "/things/2") for _ in range(10)))
        for response in results:
            assert response.status == 200
            response.release()
    # 40 requests, at most 10 at a time: connections are reused, not opened per request.
    assert len(echo.seen) == 40
    assert echo.opened_connections() <= 10
