"""Load a service's settings from `conf/` with environment overrides.

Each service reads `conf/common.toml` and then its own file (`conf/identity.toml`,
...), the second overriding the first key by key. Environment variables override
both:

* the well-known names `REDIS_URL`, `MONGO_URL`, `ISSUER`, `LOG_LEVEL` and
  `<SERVICE>_PORT` (for example `IDENTITY_PORT`);
* any other key as `<SERVICE>__<SECTION>__<KEY>`, for example
  `IDENTITY__TOKENS__ACCESS_TOKEN_LIFETIME=600`. The value is read as a TOML value
  when it parses as one (`600`, `true`, `["a", "b"]`) and as a plain string
  otherwise.

Readers turn the merged dictionary into frozen dataclasses and raise `SettingsError`
with one line naming the key and the fix, which the service prints before it exits.
"""

from __future__ import annotations

import importlib.util
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

CONF_DIR_ENV = "CONF_DIR"
COMMON_FILE = "common.toml"

LOG_LEVELS = ("debug", "info", "warning", "error")

# Upper bound of `http.workers`, well past any core count a single host offers.
MAX_WORKERS = 256


def default_workers() -> int:
    """Return the number of cores this process may run on, the default of `http.workers`."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not available on macOS
        return os.cpu_count() or 1


class SettingsError(Exception):
    """A setting is missing or invalid. The message names the key and the fix."""


def find_conf_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Return the configuration directory: `$CONF_DIR`, else `conf/` of the checkout."""
    configured = env.get(CONF_DIR_ENV)
    if configured:
        path = Path(configured)
        if not path.is_dir():
            raise SettingsError(f"{CONF_DIR_ENV}={configured} is not a directory: point it at the conf/ folder")
        return path
    checkout = Path(__file__).resolve().parent.parent / "conf"
    if checkout.is_dir():
        return checkout
    cwd = Path.cwd() / "conf"
    if cwd.is_dir():
        return cwd
    raise SettingsError(f"no conf/ directory found: set {CONF_DIR_ENV} to the folder holding common.toml")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"{path} is missing: restore it from the repository or set {CONF_DIR_ENV}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML ({exc}): fix the file") from None


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _parse_env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def _set_path(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value


def environment_overrides(env_prefix: str, env: Mapping[str, str]) -> dict[str, Any]:
    """Return the settings that environment variables set, as dotted key -> value."""
    aliases = {
        "REDIS_URL": "redis.url",
        "MONGO_URL": "mongo.url",
        "ISSUER": "issuer",
        "LOG_LEVEL": "log_level",
        f"{env_prefix}_PORT": "http.port",
    }
    overrides: dict[str, Any] = {}
    for name, dotted in aliases.items():
        if env.get(name):
            # Kept as text: a port given as "abc" must fail validation by name,
            # and a URL never parses as TOML anyway.
            overrides[dotted] = env[name]
    generic = f"{env_prefix}__"
    for name, text in env.items():
        if name.startswith(generic) and len(name) > len(generic):
            dotted = name[len(generic):].lower().replace("__", ".")
            overrides[dotted] = _parse_env_value(text)
    return overrides


def load_raw(service_file: str, env_prefix: str, env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Merge `common.toml`, the service's file and the environment into one dictionary."""
    directory = find_conf_dir(env)
    raw = _merge(_read_toml(directory / COMMON_FILE), _read_toml(directory / service_file))
    for dotted, value in environment_overrides(env_prefix, env).items():
        _set_path(raw, dotted, value)
    return raw


class Reader:
    """Typed access to the merged settings; every error names the dotted key.

    `source` names where a key can be changed, for the error message.
    """

    def __init__(self, raw: Mapping[str, Any], source: str):
        self._raw = raw
        self.source = source

    def _fail(self, key: str, problem: str, fix: str) -> SettingsError:
        return SettingsError(f"setting {key!r} {problem}: {fix} in {self.source}")

    def _lookup(self, key: str) -> Any:
        node: Any = self._raw
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node

    def has(self, key: str) -> bool:
        return self._lookup(key) is not None

    def raw(self, key: str, default: Any = None) -> Any:
        value = self._lookup(key)
        return default if value is None else value

    def string(self, key: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = self._lookup(key)
        if value is None:
            if default is None:
                raise self._fail(key, "is missing", "set it")
            value = default
        if not isinstance(value, str) or not value:
            raise self._fail(key, f"must be a non-empty string, not {value!r}", "fix it")
        if choices and value.lower() not in choices:
            raise self._fail(key, f"is {value!r}", f"use one of {', '.join(choices)}")
        return value.lower() if choices else value

    def integer(self, key: str, default: int | None = None, minimum: int | None = None,
                maximum: int | None = None) -> int:
        value = self._lookup(key)
        if value is None:
            if default is None:
                raise self._fail(key, "is missing", "set it to a whole number")
            value = default
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise self._fail(key, f"is {value!r}", "set it to a whole number") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, f"is {value!r}", "set it to a whole number")
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            raise self._fail(key, f"is {value}", f"use a value from {minimum} to {maximum}")
        return value

    def number(self, key: str, default: float | None = None, minimum: float = 0.0) -> float:
        value = self._lookup(key)
        if value is None:
            if default is None:
                raise self._fail(key, "is missing", "set it to a number")
            value = default
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise self._fail(key, f"is {value!r}", "set it to a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._fail(key, f"is {value!r}", "set it to a number")
        if value < minimum:
            raise self._fail(key, f"is {value}", f"use a value of at least {minimum}")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._lookup(key)
        if value is None:
            return default
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if not isinstance(value, bool):
            raise self._fail(key, f"is {value!r}", "set it to true or false")
        return value

    def url(self, key: str, schemes: tuple[str, ...], default: str | None = None) -> str:
        value = self.string(key, default)
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.hostname or parts.scheme == "unix"):
            raise self._fail(key, f"is {value!r}", f"use a {' or '.join(s + '://' for s in schemes)} URL")
        return value

    def string_list(self, key: str, default: list[str] | None = None) -> tuple[str, ...]:
        value = self._lookup(key)
        if value is None:
            if default is None:
                raise self._fail(key, "is missing", "set it to a list of strings")
            value = default
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise self._fail(key, f"is {value!r}", "set it to a list of non-empty strings")
        return tuple(value)


@dataclass(frozen=True)
class HttpSettings:
    """The listening address and the behaviour of a service's HTTP server."""

    host: str
    port: int
    # Trust X-Forwarded-For / X-Real-Ip / X-Scheme from a proxy in front.
    trust_proxy_headers: bool
    max_body_bytes: int
    # Seconds to let in-flight requests finish after SIGTERM before closing.
    shutdown_grace: float
    # Processes that serve the port; 1 serves from the main process without forking.
    workers: int = 1
    # "uvloop" (libuv's event loop) or "asyncio" (the standard library's).
    event_loop: str = "uvloop"


@dataclass(frozen=True)
class RedisSettings:
    url: str
    # Prepended to every key this service writes, so services can share one Redis.
    key_prefix: str
    connect_timeout: float
    command_timeout: float


@dataclass(frozen=True)
class MongoSettings:
    url: str
    database: str
    server_selection_timeout: float
    operation_timeout: float


@dataclass(frozen=True)
class CommonSettings:
    """The settings every service reads."""

    service: str
    issuer: str
    log_level: str
    http: HttpSettings
    redis: RedisSettings
    mongo: MongoSettings | None


def read_workers(reader: Reader, key: str) -> int:
    """Read a worker count: "auto" (the default) is the number of cores, 0 and 1 mean one process."""
    if str(reader.raw(key, "auto")).strip().lower() == "auto":
        return default_workers()
    return max(1, reader.integer(key, minimum=0, maximum=MAX_WORKERS))


def read_event_loop(reader: Reader, key: str) -> str:
    """Read the event loop: "uvloop" (the default) needs the uvloop package, "asyncio" does not."""
    value = reader.string(key, "uvloop", choices=("uvloop", "asyncio"))
    if value == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise reader._fail(key, "is 'uvloop' but the uvloop package is not installed",
                           "install it (pip install uvloop) or set it to 'asyncio'")
    return value


def read_redis_url(reader: Reader, key: str) -> str:
    """Read a Redis URL of any deployment that `servicekit.stores.create_redis` accepts."""
    from .stores import REDIS_SCHEMES, parse_redis_url  # stores imports this module

    value = reader.url(key, REDIS_SCHEMES)
    if "+" in urlsplit(value).scheme:
        try:
            parse_redis_url(value)
        except ValueError as exc:
            raise reader._fail(key, f"is {value!r}", str(exc)) from None
    return value


def read_common(reader: Reader, service: str, default_port: int, uses_mongo: bool,
                redis_prefix: str, mongo_database: str = "") -> CommonSettings:
    """Read the shared settings; `uses_mongo` is false for services without a database."""
    http = HttpSettings(
        host=reader.string("http.host", "localhost"),
        port=reader.integer("http.port", default_port, minimum=1, maximum=65535),
        trust_proxy_headers=reader.boolean("http.trust_proxy_headers", False),
        max_body_bytes=reader.integer("http.max_body_bytes", 1_048_576, minimum=1024),
        shutdown_grace=reader.number("http.shutdown_grace", 10.0),
        workers=read_workers(reader, "http.workers"),
        event_loop=read_event_loop(reader, "http.event_loop"),
    )
    redis = RedisSettings(
        url=read_redis_url(reader, "redis.url"),
        key_prefix=reader.string("redis.key_prefix", redis_prefix),
        connect_timeout=reader.number("redis.connect_timeout", 2.0, minimum=0.05),
        command_timeout=reader.number("redis.command_timeout", 2.0, minimum=0.05),
    )
    mongo = None
    if uses_mongo:
        mongo = MongoSettings(
            url=reader.url("mongo.url", ("mongodb", "mongodb+srv")),
            database=reader.string("mongo.database", mongo_database),
            server_selection_timeout=reader.number("mongo.server_selection_timeout", 2.0, minimum=0.05),
            operation_timeout=reader.number("mongo.operation_timeout", 5.0, minimum=0.05),
        )
    issuer = reader.url("issuer", ("http", "https")).rstrip("/")
    return CommonSettings(
        service=service,
        issuer=issuer,
        log_level=reader.string("log_level", "info", choices=LOG_LEVELS),
        http=http,
        redis=redis,
        mongo=mongo,
    )
