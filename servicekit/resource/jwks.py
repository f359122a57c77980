"""The issuer's signing keys, fetched through OpenID Connect discovery and cached.

`JwksCache.key_for(kid)` returns the public key a token names, parsed once and
pinned to the one algorithm it may verify. Keys are fetched with Tornado's
non-blocking HTTP client:

* on first use, and again when the cached set is older than `max_age` seconds, so
  a key the provider removed stops verifying tokens;
* when a token names a `kid` that is not cached, because the provider may have
  rotated its keys. This happens at most once per `refetch_interval` seconds, so
  a flood of tokens with made-up `kid` values costs the provider at most one
  request per interval.

A provider that does not answer is a 503 (`ProviderUnavailable`) only when no
cached key can decide: a cached key keeps verifying tokens while the provider is
down, even past `max_age`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import jwt
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .errors import ProviderUnavailable

log = logging.getLogger("servicekit.resource.jwks")

# Only asymmetric algorithms, because a resource server has no shared secret. A key
# type without an algorithm here (for example `oct`) is never used.
ASYMMETRIC_ALGORITHMS = frozenset({
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
})


@dataclass(frozen=True)
class PinnedKey:
    """A public key from the JWKS and the one algorithm it verifies."""

    kid: str
    algorithm: str
    key: Any


def parse_jwks(document: Any, allowed_algorithms: frozenset[str]) -> dict[str, PinnedKey]:
    """Return the signing keys of a JWKS by `kid`, each pinned to its algorithm.

    A key's algorithm is its `alg` member, or else the one its type implies (RS256
    for RSA, ES256 for EC P-256, ...). Keys without a `kid`, with `use` other than
    `sig`, symmetric keys, and keys whose algorithm is not allowed are skipped.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("the JWKS has no `keys` list")
    keys: dict[str, PinnedKey] = {}
    for entry in document["keys"]:
        pinned = _pin_key(entry, allowed_algorithms)
        if pinned is not None:
            keys[pinned.kid] = pinned
    return keys


def _pin_key(entry: Any, allowed_algorithms: frozenset[str]) -> PinnedKey | None:
    if not isinstance(entry, dict):
        return None
    kid = entry.get("kid")
    if not isinstance(kid, str) or not kid:
        return None
    if entry.get("use", "sig") != "sig" or entry.get("kty") == "oct":
        return None
    try:
        parsed = jwt.PyJWK(entry)
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError) as exc:
        log.warning("JWKS key %s skipped: %s: %s", kid, type(exc).__name__, exc)
        return None
    if parsed.algorithm_name not in allowed_algorithms:
        return None
    return PinnedKey(kid=kid, algorithm=parsed.algorithm_name, key=parsed.key)


class JwksCache:
    """The issuer's signing keys, fetched through discovery and refreshed within limits.

    `discovery_url` is the issuer's `/.well-known/openid-configuration`; its
    `issuer` member must equal `issuer` (OpenID Connect Discovery 1.0 §4.3), or no
    key is accepted. `clock` is a monotonic clock in seconds.
    """

    def __init__(self, *, issuer: str, discovery_url: str, allowed_algorithms: frozenset[str],
                 refetch_interval: float, max_age: float, http_timeout: float,
                 http_client: AsyncHTTPClient | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.issuer = issuer
        self.discovery_url = discovery_url
        self.allowed_algorithms = allowed_algorithms
        self.refetch_interval = refetch_interval
        self.max_age = max_age
        self.http_timeout = http_timeout
        self._http = http_client
        self._clock = clock
        self._keys: dict[str, PinnedKey] = {}
        self._jwks_uri: str | None = None
        self._loaded_at: float | None = None
        self._last_attempt: float | None = None
        self._last_failure: str | None = None
        self._attempts = 0
        self._lock = asyncio.Lock()

    @property
    def fetch_attempts(self) -> int:
        """How many times the keys were fetched or tried, for tests and metrics."""
        return self._attempts

    async def key_for(self, kid: str) -> PinnedKey | None:
        """Return the key with this `kid`, or None when the provider does not publish it.

        Raises `ProviderUnavailable` when the key is not cached and the last fetch
        from the provider failed.
        """
        key = self._keys.get(kid)
        if key is not None and not self._is_stale():
            return key
        # While a fetch runs, wait for its result instead of judging with old keys.
        attempts_before = self._attempts
        if self._lock.locked() or self._may_fetch():
            async with self._lock:
                if self._attempts == attempts_before and self._may_fetch():
                    await self._refresh()
        return self._cached_or_raise(kid)

    def _is_stale(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at >= self.max_age

    def _may_fetch(self) -> bool:
        return self._last_attempt is None or self._clock() - self._last_attempt >= self.refetch_interval

    def _cached_or_raise(self, kid: str) -> PinnedKey | None:
        key = self._keys.get(kid)
        if key is None and self._last_failure is not None:
            raise ProviderUnavailable(f"no cached key {kid!r} and the last key fetch failed: "
                                      f"{self._last_failure}")
        return key

    async def _refresh(self) -> None:
        self._attempts += 1
        self._last_attempt = self._clock()
        try:
            keys = await self._fetch_keys()
        except _FetchFailed as exc:
            self._last_failure = str(exc)
            # The discovery document may have moved the JWKS; look it up again next time.
            self._jwks_uri = None
            log.warning("fetching the signing keys of %s failed: %s (%d key(s) still cached)",
                        self.issuer, exc, len(self._keys))
            return
        self._keys = keys
        self._loaded_at = self._last_attempt
        self._last_failure = None
        log.info("loaded %d signing key(s) of %s: %s", len(keys), self.issuer, ", ".join(sorted(keys)))

    async def _fetch_keys(self) -> dict[str, PinnedKey]:
        if self._jwks_uri is None:
            self._jwks_uri = await self._discover_jwks_uri()
        document = await self._get_json(self._jwks_uri)
        try:
            return parse_jwks(document, self.allowed_algorithms)
        except ValueError as exc:
            raise _FetchFailed(f"{self._jwks_uri}: {exc}") from None

    async def _discover_jwks_uri(self) -> str:
        discovery = await self._get_json(self.discovery_url)
        if not isinstance(discovery, dict) or discovery.get("issuer") != self.issuer:
            found = discovery.get("issuer") if isinstance(discovery, dict) else None
            raise _FetchFailed(f"{self.discovery_url} names issuer {found!r}, expected {self.issuer!r}")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise _FetchFailed(f"{self.discovery_url} has no valid jwks_uri")
        return jwks_uri

    async def _get_json(self, url: str) -> Any:
        request = HTTPRequest(url, headers={"Accept": "application/json"}, follow_redirects=False,
                              connect_timeout=self.http_timeout, request_timeout=self.http_timeout)
        if self._http is None:
            self._http = AsyncHTTPClient()
        try:
            response = await self._http.fetch(request, raise_error=False)
        except (OSError, asyncio.TimeoutError, HTTPClientError) as exc:
            # HTTPClientError here is a timeout (code 599); other statuses are returned.
            raise _FetchFailed(f"{url}: {type(exc).__name__}: {exc}") from None
        if response.code != 200:
            raise _FetchFailed(f"{url} returned status {response.code}")
        try:
            return json.loads(response.body)
        except ValueError:
            raise _FetchFailed(f"{url} did not return JSON") from None


class _FetchFailed(Exception):
    """Discovery or the JWKS could not be fetched or read; the message is for the log."""
