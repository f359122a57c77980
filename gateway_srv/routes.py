"""The route table: which client-facing paths go to which downstream, under which policies.

`conf/routes.toml` is read and validated once at start. Any mistake stops the
gateway with a `SettingsError` that names the route. Mistakes include two routes
with the same template and a shared method, a placeholder used on one side only,
an unknown downstream, and a required scope that no configured client can obtain.

Terms follow Ocelot: *upstream* is the path the client calls on the gateway,
*downstream* is the service behind it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from servicekit.resource import ClaimRequirement, Policy
from servicekit.settings import SettingsError

from .templates import PathTemplate, TemplateError

# Methods a route may list; an empty list means all of them.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# RFC 9110 section 9.2.2: a client may repeat these without changing the outcome.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
LOAD_BALANCERS = ("round_robin", "least_outstanding")
CLAIM_MATCH_MODES = ("any", "all")
# Paths the gateway serves itself; no route may claim them.
RESERVED_PREFIXES = ("/healthz", "/readyz", "/_gateway")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` requests per `window` seconds (a fixed window)."""

    requests: int
    window: int


@dataclass(frozen=True)
class RateLimitPolicy:
    per_client: RateLimit | None
    per_address: RateLimit | None
    # Per end user (`sub`) of a user's token; machine tokens are not counted here.
    per_user: RateLimit | None = None

    @property
    def window(self) -> int:
        """The seconds of the window, which all limits of a route share."""
        return next(limit.window for limit in (self.per_client, self.per_user, self.per_address) if limit)


@dataclass(frozen=True)
class CircuitBreakerPolicy:
    """Open after `failures` consecutive failed requests; stay open for `open_seconds`."""

    failures: int
    open_seconds: float


@dataclass(frozen=True)
class Downstream:
    """A named group of hosts that serve the same service."""

    name: str
    hosts: tuple[str, ...]
    load_balancer: str
    # GET path that returns a 2xx status when a host is up again.
    health_path: str
    # Consecutive failed requests after which a host is skipped until a probe succeeds.
    unhealthy_after: int


@dataclass(frozen=True)
class Route:
    name: str
    upstream_path: PathTemplate
    # Empty: every method in METHODS.
    methods: frozenset[str]
    downstream_path: PathTemplate
    downstream: str
    # Required scopes and claim values; None for a route open to anonymous requests.
    auth: Policy | None
    # (request header, claim) pairs; the client's own values of these headers are dropped.
    claims_to_headers: tuple[tuple[str, str], ...]
    rate_limit: RateLimitPolicy | None
    # Seconds to wait for the downstream's response headers, and for each body chunk.
    timeout: float
    # Extra attempts on another host for idempotent requests without a body.
    retries: int
    circuit_breaker: CircuitBreakerPolicy | None

    def allows(self, method: str) -> bool:
        return not self.methods or method in self.methods


@dataclass(frozen=True)
class RouteTable:
    """Routes sorted most specific first, and the downstream groups they use."""

    routes: tuple[Route, ...]
    downstreams: Mapping[str, Downstream]

    def match(self, raw_path: str) -> list[tuple[Route, dict[str, str]]]:
        """Return every route whose template matches `raw_path`, most specific first."""
        found = []
        for route in self.routes:
            values = route.upstream_path.match(raw_path)
            if values is not None:
                found.append((route, values))
        return found


def downstream_env_name(name: str) -> str:
    """Return the variable that overrides a downstream's hosts: `GATEWAY_<NAME>_URL`."""
    return "GATEWAY_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper() + "_URL"


def load_route_table(path: Path, obtainable_scopes: frozenset[str] | None,
                     env: Mapping[str, str] = os.environ) -> RouteTable:
    """Read and validate the route file.

    `obtainable_scopes` are the scopes some configured client can obtain; a route
    that requires any other scope is rejected, because no request could pass it.
    None skips that check. Raises `SettingsError` naming the route and the fix.
    """
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"route file {path} is missing: create it or set GATEWAY__ROUTES__FILE") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"route file {path} is not valid TOML ({exc}): fix the file") from None
    downstreams = _read_downstreams(raw.get("downstreams"), path, env)
    entries = raw.get("routes")
    if not isinstance(entries, list) or not entries:
        raise SettingsError(f"route file {path} has no [[routes]]: add at least one route")
    routes = [_read_route(entry, index, path, downstreams, obtainable_scopes) for index, entry in enumerate(entries)]
    _check_unique(routes, path)
    routes.sort(key=lambda route: route.upstream_path.specificity)
    return RouteTable(tuple(routes), downstreams)


def _read_downstreams(raw: Any, path: Path, env: Mapping[str, str]) -> dict[str, Downstream]:
    if not isinstance(raw, dict) or not raw:
        raise SettingsError(f"route file {path} has no [downstreams.<name>] table: add one per service")
    groups = {}
    for name, entry in raw.items():
        where = f"downstream {name!r} in {path}"
        if not isinstance(entry, dict):
            raise SettingsError(f"{where} must be a table with `hosts`")
        override = env.get(downstream_env_name(name), "").strip()
        hosts = [host.strip() for host in override.split(",")] if override else entry.get("hosts")
        if not isinstance(hosts, list) or not hosts:
            raise SettingsError(f"{where}: `hosts` must be a non-empty list of http:// URLs")
        for host in hosts:
            parts = urlsplit(host) if isinstance(host, str) else None
            if not parts or parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
                raise SettingsError(f"{where}: host {host!r} must be an http(s) URL without a path")
        balancer = entry.get("load_balancer", "round_robin")
        if balancer not in LOAD_BALANCERS:
            raise SettingsError(f"{where}: load_balancer {balancer!r} must be one of {', '.join(LOAD_BALANCERS)}")
        health_path = entry.get("health_path", "/healthz")
        if not isinstance(health_path, str) or not health_path.startswith("/"):
            raise SettingsError(f"{where}: health_path must start with '/'")
        groups[name] = Downstream(
            name=name,
            hosts=tuple(host.rstrip("/") for host in hosts),
            load_balancer=balancer,
            health_path=health_path,
            unhealthy_after=_positive_int(entry, "unhealthy_after", 1, where),
        )
    return groups


def _read_route(entry: Any, index: int, path: Path, downstreams: Mapping[str, Downstream],
                obtainable_scopes: frozenset[str] | None) -> Route:
    if not isinstance(entry, dict):
        raise SettingsError(f"route #{index + 1} in {path} must be a table")
    name = entry.get("name")
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9._-]+$", name):
        raise SettingsError(f"route #{index + 1} in {path}: `name` must be letters, digits, '.', '_' or '-'")
    where = f"route {name!r} in {path}"
    try:
        upstream = PathTemplate.parse(entry.get("upstream_path"))
        downstream_path = PathTemplate.parse(entry.get("downstream_path"))
    except TemplateError as exc:
        raise SettingsError(f"{where}: {exc}") from None
    if any(upstream.text == p or upstream.text.startswith(p + "/") for p in RESERVED_PREFIXES):
        raise SettingsError(f"{where}: {upstream.text} is served by the gateway itself: choose another path")
    missing = upstream.placeholders ^ downstream_path.placeholders
    if missing:
        raise SettingsError(f"{where}: placeholder(s) {', '.join(sorted(missing))} must appear in both "
                            f"upstream_path {upstream.text} and downstream_path {downstream_path.text}")
    group = entry.get("downstream")
    if group not in downstreams:
        raise SettingsError(f"{where}: downstream {group!r} is not defined: add [downstreams.{group}]")
    auth = _read_auth(entry, where, obtainable_scopes)
    rate_limit = _read_rate_limit(entry.get("rate_limit"), where)
    if rate_limit is not None and rate_limit.per_user and auth is None:
        raise SettingsError(f"{where}: rate_limit per_user needs an [routes.authentication] table: "
                            f"without a token there is no user to count")
    return Route(
        name=name,
        upstream_path=upstream,
        methods=_read_methods(entry.get("upstream_methods", []), where),
        downstream_path=downstream_path,
        downstream=group,
        auth=auth,
        claims_to_headers=_read_claims_to_headers(entry.get("claims_to_headers", {}), where),
        rate_limit=rate_limit,
        timeout=_positive_number(entry, "timeout", 30.0, where),
        retries=_non_negative_int(entry, "retries", 1, where),
        circuit_breaker=_read_circuit_breaker(entry.get("circuit_breaker"), where),
    )


def _read_methods(raw: Any, where: str) -> frozenset[str]:
    if not isinstance(raw, list) or not all(isinstance(m, str) and m.upper() in METHODS for m in raw):
        raise SettingsError(f"{where}: upstream_methods must be a list of {', '.join(METHODS)} (empty for all)")
    return frozenset(m.upper() for m in raw)


def _read_auth(entry: Mapping[str, Any], where: str, obtainable_scopes: frozenset[str] | None) -> Policy | None:
    raw = entry.get("authentication")
    claims_raw = entry.get("claims", [])
    if raw is None:
        if claims_raw or entry.get("claims_to_headers"):
            raise SettingsError(f"{where}: `claims` and `claims_to_headers` need an [routes.authentication] table")
        return None
    scopes = raw.get("scopes", []) if isinstance(raw, dict) else None
    if not isinstance(scopes, list) or not all(isinstance(s, str) and s for s in scopes):
        raise SettingsError(f"{where}: authentication.scopes must be a list of scope names")
    if obtainable_scopes is not None:
        unknown = sorted(set(scopes) - obtainable_scopes)
        if unknown:
            raise SettingsError(f"{where}: no configured client can obtain scope(s) {', '.join(unknown)}: "
                                f"fix the route or the clients in auth.clients_file")
    if not isinstance(claims_raw, list):
        raise SettingsError(f"{where}: `claims` must be a list of [[routes.claims]] tables")
    claims = tuple(_read_claim(item, where) for item in claims_raw)
    return Policy(scopes=frozenset(scopes), claims=claims)


def _read_claim(raw: Any, where: str) -> ClaimRequirement:
    if not isinstance(raw, dict) or not isinstance(raw.get("claim"), str) or not raw["claim"]:
        raise SettingsError(f"{where}: each [[routes.claims]] needs `claim`, `values` and `match`")
    values = raw.get("values")
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise SettingsError(f"{where}: claim {raw['claim']!r} needs `values`, a non-empty list of strings")
    match = raw.get("match", "any")
    if match not in CLAIM_MATCH_MODES:
        raise SettingsError(f"{where}: claim {raw['claim']!r} has match {match!r}: use 'any' or 'all'")
    # An array claim matches element by element: `any` needs one shared value, `all` every value.
    return ClaimRequirement.of(raw["claim"], values, match)


def _read_claims_to_headers(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict):
        raise SettingsError(f"{where}: claims_to_headers must be a table of header = \"claim\"")
    for header, claim in raw.items():
        if not _HEADER_NAME.match(header) or not isinstance(claim, str) or not claim:
            raise SettingsError(f"{where}: claims_to_headers entry {header!r} = {claim!r} is invalid")
    return tuple(raw.items())


def _read_rate_limit(raw: Any, where: str) -> RateLimitPolicy | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise SettingsError(f"{where}: rate_limit must be a table")
    window = _positive_int(raw, "window", 60, f"{where} rate_limit")
    limits = {}
    for key in ("per_client", "per_user", "per_address"):
        if key in raw:
            limits[key] = RateLimit(_positive_int(raw, key, 1, f"{where} rate_limit"), window)
    if not limits:
        raise SettingsError(f"{where}: rate_limit needs per_client, per_user or per_address (requests per window)")
    return RateLimitPolicy(per_client=limits.get("per_client"), per_address=limits.get("per_address"),
                           per_user=limits.get("per_user"))


def _read_circuit_breaker(raw: Any, where: str) -> CircuitBreakerPolicy | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise SettingsError(f"{where}: circuit_breaker must be a table")
    return CircuitBreakerPolicy(
        failures=_positive_int(raw, "failures", 5, f"{where} circuit_breaker"),
        open_seconds=_positive_number(raw, "open_seconds", 30.0, f"{where} circuit_breaker"),
    )


def _check_unique(routes: list[Route], path: Path) -> None:
    """Reject two routes that match the same paths for a shared method."""
    for index, first in enumerate(routes):
        for second in routes[index + 1:]:
            if first.name == second.name:
                raise SettingsError(f"route {first.name!r} in {path} is defined twice: rename one")
            if first.upstream_path.shape != second.upstream_path.shape:
                continue
            if first.methods and second.methods and not first.methods & second.methods:
                continue
            raise SettingsError(
                f"route {second.name!r} in {path} overlaps route {first.name!r}: both match "
                f"{second.upstream_path.text} for the same method(s); merge them or split upstream_methods")


def _positive_int(raw: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingsError(f"{where}: {key} must be a whole number of at least 1, not {value!r}")
    return value


def _non_negative_int(raw: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SettingsError(f"{where}: {key} must be a whole number of at least 0, not {value!r}")
    return value


def _positive_number(raw: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise SettingsError(f"{where}: {key} must be a number above 0, not {value!r}")
    return float(value)
