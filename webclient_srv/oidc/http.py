"""JSON requests to the identity provider with Tornado's non-blocking client."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tornado.httpclient import (
    AsyncHTTPClient,
    HTTPClientError,
    HTTPRequest,
    HTTPResponse,
)

from ..errors import ProviderUnavailable

UNAVAILABLE_TEXT = "The identity provider is not responding. Try again in a moment."


async def fetch(url: str, *, timeout: float, method: str = "GET", body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> HTTPResponse:
    """Send one request and return the response whatever its status.

    Raises `ProviderUnavailable` when the provider cannot be reached or times out.
    Redirects are not followed, so a token request is never re-sent elsewhere.
    """
    request = HTTPRequest(url, method=method, body=body, headers={"Accept": "application/json", **(headers or {})},
                          follow_redirects=False, connect_timeout=timeout, request_timeout=timeout)
    try:
        return await AsyncHTTPClient().fetch(request, raise_error=False)
    except (TimeoutError, OSError, HTTPClientError) as exc:
        # HTTPClientError here is a timeout (code 599); other statuses are returned.
        raise ProviderUnavailable(UNAVAILABLE_TEXT, log_detail=f"{method} {url}: {type(exc).__name__}: {exc}") from None


def json_object(response: HTTPResponse) -> dict[str, Any] | None:
    """Return the response body as a JSON object, or None when it is not one."""
    try:
        document = json.loads(response.body or b"")
    except ValueError:
        return None
    return document if isinstance(document, dict) else None
