"""Downstream failures: refused (502), reset (502), hanging (504), and the circuit breaker."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from tornado.httpclient import AsyncHTTPClient

from .conftest import open_route
from .downstreams import (
    Downstream,
    HangingDownstream,
    ResettingDownstream,
    TruncatingDownstream,
)


async def fetch(url: str, **kwargs):
    return await AsyncHTTPClient().fetch(url, raise_error=False, **kwargs)


@pytest.mark.gen_test
async def test_stopped_downstream_is_502(start_gateway, echo):
    gateway = await start_gateway(open_route([echo.url]))
    assert (await fetch(gateway.url + "/things/1")).code == 200
    await echo.stop()
    response = await fetch(gateway.url + "/things/1")
    assert response.code == 502
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert json.loads(response.body) == {"error": "bad_gateway",
                                         "error_description": "the downstream refused or reset the connection",
                                         "route": "things"}


@pytest.mark.gen_test
async def test_reset_connection_is_502(start_gateway):
    resetting = await ResettingDownstream().start()
    try:
        gateway = await start_gateway(open_route([resetting.url]))
        for method in ("GET", "POST"):
            response = await fetch(gateway.url + "/things/1", method=method,
                                   body=b"x" if method == "POST" else None)
            assert response.code == 502
            assert json.loads(response.body)["error"] == "bad_gateway"
    finally:
        await resetting.stop()


@pytest.mark.gen_test(timeout=10)
async def test_hanging_downstream_is_504(start_gateway):
    hanging = HangingDownstream("hang").start()
    try:
        gateway = await start_gateway(open_route([hanging.url], extra="retries = 2"))
        started = time.monotonic()
        response = await fetch(gateway.url + "/things/1")
        elapsed = time.monotonic() - started
        assert response.code == 504
        assert json.loads(response.body) == {"error": "gateway_timeout",
                                             "error_description": "the downstream did not respond within 1s",
                                             "route": "things"}
        # The route's timeout is 1s and a timeout is never retried.
        assert 0.9 < elapsed < 1.9
    finally:
        await hanging.stop()


@pytest.mark.gen_test(timeout=15)
async def test_circuit_opens_and_closes(start_gateway, echo):
    gateway = await start_gateway(open_route([echo.url], extra="""
retries = 0
[routes.circuit_breaker]
failures = 3
open_seconds = 1.0
""", group="unhealthy_after = 100"))
    port = echo.port
    await echo.stop()
    for _ in range(3):
        assert (await fetch(gateway.url + "/things/1")).code == 502
    opened = await fetch(gateway.url + "/things/1")
    assert opened.code == 503
    assert opened.headers["Retry-After"] == "1"
    assert json.loads(opened.body) == {
        "error": "temporarily_unavailable",
        "error_description": "the route's circuit breaker is open after repeated downstream failures; retry in 1s",
        "route": "things"}
    assert gateway.gateway.circuits["things"].state == "open"

    # After open_seconds one trial goes through; it fails, so the circuit opens again.
    await asyncio.sleep(1.05)
    assert (await fetch(gateway.url + "/things/1")).code == 502
    assert (await fetch(gateway.url + "/things/1")).code == 503

    # The downstream is back: the next trial succeeds and closes the circuit.
    restarted = Downstream("echo-a", port=port).start()
    try:
        await asyncio.sleep(1.05)
        assert (await fetch(gateway.url + "/things/1")).code == 200
        assert gateway.gateway.circuits["things"].state == "closed"
        assert (await fetch(gateway.url + "/things/2")).code == 200
    finally:
        await restarted.stop()


@pytest.mark.gen_test(timeout=10)
async def test_body_cut_before_sending_is_502(start_gateway):
    truncating = await TruncatingDownstream().start()
    try:
        gateway = await start_gateway(open_route([truncating.url]))
        response = await fetch(gateway.url + "/things/1")
        assert response.code == 502
        assert json.loads(response.body) == {"error": "bad_gateway",
                                             "error_description": "the downstream closed the connection mid-response",
                                             "route": "things"}
    finally:
        await truncating.stop()


@pytest.mark.gen_test(timeout=10)
async def test_body_stalled_before_sending_is_504(start_gateway):
    stalling = await TruncatingDownstream(stall=True).start()
    try:
        gateway = await start_gateway(open_route([stalling.url]))
        response = await fetch(gateway.url + "/things/1")
        assert response.code == 504
        assert json.loads(response.body) == {
            "error": "gateway_timeout",
            "error_description": "the downstream did not send its response within 1s",
            "route": "things"}
    finally:
        await stalling.stop()
