"""The provider's endpoints, read from its discovery document (OpenID Connect Discovery 1.0).

No endpoint path is configured: each comes from
`<issuer>/.well-known/openid-configuration`, whose `issuer` must equal the
configured issuer exactly (§4.3), or the document is rejected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ProviderUnavailable
from .http import UNAVAILABLE_TEXT, fetch, json_object

DISCOVERY_PATH = "/.well-known/openid-configuration"

REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")
OPTIONAL_ENDPOINTS = ("userinfo_endpoint", "end_session_endpoint")

# Seconds before a failed refresh of a cached document is tried again.
RETRY_AFTER_FAILURE = 30.0


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    # RFC 9207 §3: when true, every authorization response carries `iss`.
    authorization_response_iss_parameter_supported: bool


def parse_metadata(document: dict[str, Any], issuer: str) -> ProviderMetadata:
    """Return the endpoints of a discovery document; raise ValueError naming the problem."""
    if document.get("issuer") != issuer:
        raise ValueError(f"its issuer is {document.get('issuer')!r}, not {issuer!r}")
    endpoints: dict[str, str | None] = {}
    for name in REQUIRED_ENDPOINTS + OPTIONAL_ENDPOINTS:
        value = document.get(name)
        if value is not None and not (isinstance(value, str) and value.startswith(("https://", "http://"))):
            raise ValueError(f"{name} is not an http(s) URL")
        if value is None and name in REQUIRED_ENDPOINTS:
            raise ValueError(f"it has no {name}")
        endpoints[name] = value
    return ProviderMetadata(
        issuer=issuer,
        authorization_response_iss_parameter_supported=
        document.get("authorization_response_iss_parameter_supported") is True,
        **endpoints,  # type: ignore[arg-type]
    )


class MetadataCache:
    """The discovery document, fetched on first use and again after `max_age` seconds.

    A failed fetch keeps the cached document in use; with nothing cached it raises
    `ProviderUnavailable`.
    """

    def __init__(self, issuer: str, *, max_age: float, timeout: float,
                 clock: Callable[[], float] = time.monotonic):
        self.issuer = issuer
        self.url = issuer + DISCOVERY_PATH
        self.max_age = max_age
        self.timeout = timeout
        self._clock = clock
        self._metadata: ProviderMetadata | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> ProviderMetadata:
        if self._metadata is not None and self._clock() - self._loaded_at < self.max_age:
            return self._metadata
        async with self._lock:
            if self._metadata is None or self._clock() - self._loaded_at >= self.max_age:
                await self._load()
        assert self._metadata is not None
        return self._metadata

    async def _load(self) -> None:
        try:
            response = await fetch(self.url, timeout=self.timeout)
        except ProviderUnavailable:
            if self._metadata is not None:
                self._retry_later()
                return
            raise
        document = json_object(response) if response.code == 200 else None
        try:
            if document is None:
                raise ValueError(f"status {response.code} without a JSON object")
            self._metadata = parse_metadata(document, self.issuer)
        except ValueError as exc:
            if self._metadata is not None:
                self._retry_later()
                return
            raise ProviderUnavailable(UNAVAILABLE_TEXT, log_detail=f"discovery document {self.url} "
                                                                   f"rejected: {exc}") from None
        self._loaded_at = self._clock()

    def _retry_later(self) -> None:
        # Keep serving the cached document; ask the provider again after a pause
        # instead of on every request while it is down.
        self._loaded_at = self._clock() - self.max_age + min(RETRY_AFTER_FAILURE, self.max_age)
