"""Settings of gateway_srv, read from conf/common.toml, conf/gateway.toml and the route file."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from servicekit.resource import ValidatorSettings, read_validator_settings
from servicekit.settings import (
    CommonSettings,
    Reader,
    SettingsError,
    find_conf_dir,
    load_raw,
    read_common,
)

from .routes import RouteTable, load_route_table

SERVICE = "gateway_srv"
ENV_PREFIX = "GATEWAY"
DEFAULT_PORT = 5010


@dataclass(frozen=True)
class ProxySettings:
    """Connection, pooling and body limits for requests to downstream hosts."""

    # Seconds to open a TCP connection to a downstream host.
    connect_timeout: float
    # Pooled keep-alive connections, in total and to each downstream host.
    max_connections: int
    max_connections_per_host: int
    # Seconds an idle pooled connection stays open.
    keepalive_timeout: float
    # Largest request body streamed downstream, in bytes; larger ones get 413.
    max_body_bytes: int
    # Seconds between health probes of a host that failed.
    probe_interval: float


@dataclass(frozen=True)
class AuthSettings:
    # Scope a token needs for the admin endpoint.
    admin_scope: str
    # How admin tokens are validated: like `tokens`, but for the admin audience.
    admin_tokens: ValidatorSettings
    # Scopes that some client registered at identity_srv can obtain; checked against the routes.
    obtainable_scopes: frozenset[str]
    tokens: ValidatorSettings


@dataclass(frozen=True)
class Settings:
    common: CommonSettings
    proxy: ProxySettings
    auth: AuthSettings
    routes: RouteTable


def read_obtainable_scopes(path: Path) -> frozenset[str]:
    """Return the scopes of every `[[clients]]` entry of identity_srv's clients file."""
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"clients file {path} is missing: point auth.clients_file at identity_srv's "
                            f"clients.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"clients file {path} is not valid TOML ({exc}): fix the file") from None
    clients = raw.get("clients")
    if not isinstance(clients, list):
        raise SettingsError(f"clients file {path} has no [[clients]] entries")
    scopes: set[str] = set()
    for client in clients:
        if isinstance(client, dict) and isinstance(client.get("scopes"), list):
            scopes.update(scope for scope in client["scopes"] if isinstance(scope, str))
    return frozenset(scopes)


def _conf_path(reader: Reader, key: str, default: str, env: Mapping[str, str]) -> Path:
    path = Path(reader.string(key, default))
    return path if path.is_absolute() else find_conf_dir(env) / path


def load_settings(env: Mapping[str, str] = os.environ) -> Settings:
    reader = Reader(load_raw("gateway.toml", ENV_PREFIX, env), "conf/gateway.toml or the environment")
    common = read_common(reader, SERVICE, DEFAULT_PORT, uses_mongo=False,
                         redis_prefix="gw:", mongo_database="")
    proxy = ProxySettings(
        connect_timeout=reader.number("proxy.connect_timeout", 2.0, minimum=0.05),
        max_connections=reader.integer("proxy.max_connections", 200, minimum=1),
        max_connections_per_host=reader.integer("proxy.max_connections_per_host", 100, minimum=1),
        keepalive_timeout=reader.number("proxy.keepalive_timeout", 30.0, minimum=1.0),
        max_body_bytes=reader.integer("proxy.max_body_bytes", common.http.max_body_bytes, minimum=1024),
        probe_interval=reader.number("proxy.probe_interval", 2.0, minimum=0.05),
    )
    tokens = read_validator_settings(reader, issuer=common.issuer,
                                     audience=reader.string("tokens.audience", "movieAPI"), realm="gateway")
    auth = AuthSettings(
        admin_scope=reader.string("auth.admin_scope", "gateway.admin"),
        obtainable_scopes=read_obtainable_scopes(_conf_path(reader, "auth.clients_file", "clients.toml", env)),
        tokens=tokens,
        admin_tokens=dataclasses.replace(tokens, audience=reader.string("auth.admin_audience", "gateway")),
    )
    routes = load_route_table(_conf_path(reader, "routes.file", "routes.toml", env), auth.obtainable_scopes, env)
    return Settings(common=common, proxy=proxy, auth=auth, routes=routes)
