"""Path traversal through route templates and static files (RFC 3986 §5.2.4, §7.3)."""

from __future__ import annotations

import pytest

from .conftest import machine_token, raw_request

TRAVERSALS = [
    "/things/../admin", "/things/a/../../admin", "/things/%2e%2e/admin", "/things/%2E%2E/%2e%2E/admin",
    "/things/.%2e/admin", "/things/a/./b", "/items/..", "/items/%2e%2e", "/items/.",
]


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def get_raw(url: str, path: str, token: str | None = None) -> bytes:
    authorization = f"Authorization: Bearer {token}\r\n" if token else ""
    return raw_request(url, f"GET {path} HTTP/1.1\r\nHost: x\r\n{authorization}Connection: close\r\n\r\n".encode())


@pytest.mark.parametrize("path", TRAVERSALS)
def test_dot_segments_refused(stack, echo_gateway, path):
    # RFC 3986 §5.2.4: a downstream would resolve dot segments, so the gateway refuses them with 400.
    before = len(echo_gateway.echo.paths)
    reply = get_raw(echo_gateway.gateway.url, path, machine_token(stack))
    assert status_of(reply) == 400
    assert len(echo_gateway.echo.paths) == before


@pytest.mark.parametrize("value", ["a%2Fb", "a%2F..%2Fadmin", "%252e%252e"])
def test_encoded_slash_stays_in_segment(stack, echo_gateway, value):
    # RFC 3986 §7.3: an encoded "/" in a {name} value stays encoded, so it cannot add a segment.
    reply = get_raw(echo_gateway.gateway.url, f"/items/{value}")
    status = status_of(reply)
    assert status in (200, 400, 404)
    if status == 200:
        path = echo_gateway.echo.paths[-1]
        assert path.startswith("/api/items/")
        assert "/" not in path.removeprefix("/api/items/")


def test_echo_saw_only_route_paths(stack, echo_gateway):
    # Whatever came before, every forwarded path lies under a route's downstream prefix.
    for path in ["/things/x/y", "/items/42"]:
        get_raw(echo_gateway.gateway.url, path, machine_token(stack))
    assert echo_gateway.echo.paths
    for path in echo_gateway.echo.paths:
        assert path.startswith(("/api/things/", "/api/items/")), path


@pytest.mark.parametrize("path", ["/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd",
                                  "/static/..%2f..%2fsetup.py"])
def test_static_files_stay_in_folder(stack, path):
    # RFC 3986 §5.2.4: static file serving never leaves its folder.
    for service in (stack.identity, stack.webclient):
        reply = get_raw(service.url, path)
        assert status_of(reply) in (400, 403, 404), (service.package, reply[:200])
        assert b"root:" not in reply
