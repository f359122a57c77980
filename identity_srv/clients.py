"""Clients, scopes and API resources, read once from conf/clients.toml.

The file is configuration: every instance reads the same file at start and keeps
the result in frozen dataclasses. Any inconsistency (a scope no resource defines, an
unknown grant type, a malformed secret hash) raises `SettingsError` naming the entry,
so the service stops at start instead of failing on the first request.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from servicekit.settings import SettingsError

from .secrets import HASH_PATTERN

# Grant types a client may be configured with; each has a module in `identity_srv.grants`.
KNOWN_GRANT_TYPES = ("authorization_code", "client_credentials", "refresh_token")

# RFC 6749 Appendix A.1: client_id = *VSCHAR, printable ASCII 0x20-0x7E.
_CLIENT_ID = re.compile(r"^[\x20-\x7e]{1,200}$")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")

DEFAULT_ACCESS_TOKEN_LIFETIME = 3600


@dataclass(frozen=True)
class IdentityScope:
    """A scope that releases user claims (`openid`, `profile`, ...)."""

    name: str
    claims: tuple[str, ...]


@dataclass(frozen=True)
class ApiResource:
    """An API: its name is the `aud` of tokens carrying any of its scopes."""

    name: str
    scopes: tuple[str, ...]
    # User claims a user's access token for this API carries.
    user_claims: tuple[str, ...]


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    # "sha256:<hex>"; None for a public client, which cannot use client_credentials.
    secret_hash: str | None
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    require_pkce: bool
    access_token_lifetime: int
    # Show the consent page before the first code for a user.
    require_consent: bool = False
    # Where the provider POSTs a logout token when a session of this client ends.
    backchannel_logout_uri: str | None = None

    @property
    def confidential(self) -> bool:
        return self.secret_hash is not None


@dataclass(frozen=True)
class Registry:
    """All clients, scopes and resources; the mappings are read-only."""

    clients: Mapping[str, Client]
    identity_scopes: Mapping[str, IdentityScope]
    # API scope name -> the resource that defines it.
    api_scopes: Mapping[str, ApiResource]
    resources: Mapping[str, ApiResource]

    def audience(self, scopes: tuple[str, ...]) -> tuple[str, ...]:
        """Return the names of the resources that define the given API scopes, in scope order."""
        names: list[str] = []
        for scope in scopes:
            resource = self.api_scopes.get(scope)
            if resource is not None and resource.name not in names:
                names.append(resource.name)
        return tuple(names)

    def max_access_token_lifetime(self) -> int:
        return max((client.access_token_lifetime for client in self.clients.values()),
                   default=DEFAULT_ACCESS_TOKEN_LIFETIME)

    def all_scopes(self) -> tuple[str, ...]:
        return (*self.identity_scopes, *self.api_scopes)


class _Entry:
    """Typed access to one table of the file; errors name the table and key."""

    def __init__(self, raw: Any, where: str, path: Path):
        if not isinstance(raw, dict):
            raise SettingsError(f"{path}: {where} must be a table")
        self.raw = raw
        self.where = where
        self.path = path

    def fail(self, message: str) -> SettingsError:
        return SettingsError(f"{self.path}: {self.where}: {message}")

    def string(self, key: str, default: str | None = None) -> str:
        value = self.raw.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(f"'{key}' must be a non-empty string, not {value!r}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise self.fail(f"'{key}' must be a list of non-empty strings, not {value!r}")
        if len(set(value)) != len(value):
            raise self.fail(f"'{key}' lists a value twice: {value!r}")
        return tuple(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"'{key}' must be true or false, not {value!r}")
        return value

    def integer(self, key: str, default: int, minimum: int) -> int:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(f"'{key}' must be a whole number of at least {minimum}, not {value!r}")
        return value


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"clients file {path} is missing: restore conf/clients.toml or set "
                            f"clients.file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML ({exc}): fix the file") from None


def _tables(raw: dict[str, Any], key: str, path: Path) -> list[Any]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise SettingsError(f"{path}: '{key}' must be an array of tables ([[{key}]])")
    return value


def _read_scopes(raw: dict[str, Any], path: Path) -> tuple[dict[str, IdentityScope], dict[str, ApiResource]]:
    identity: dict[str, IdentityScope] = {}
    for index, table in enumerate(_tables(raw, "identity_scopes", path)):
        entry = _Entry(table, f"identity_scopes[{index}]", path)
        name = entry.string("name")
        if name in identity:
            raise entry.fail(f"identity scope {name!r} is defined twice")
        identity[name] = IdentityScope(name=name, claims=entry.strings("claims"))

    resources: dict[str, ApiResource] = {}
    for index, table in enumerate(_tables(raw, "api_resources", path)):
        entry = _Entry(table, f"api_resources[{index}]", path)
        resource = ApiResource(name=entry.string("name"), scopes=entry.strings("scopes"),
                               user_claims=entry.strings("user_claims"))
        if resource.name in resources:
            raise entry.fail(f"API resource {resource.name!r} is defined twice")
        if not resource.scopes:
            raise entry.fail(f"API resource {resource.name!r} defines no scopes")
        resources[resource.name] = resource

    api_scopes: dict[str, ApiResource] = {}
    for resource in resources.values():
        for scope in resource.scopes:
            if not SCOPE_TOKEN.match(scope):
                raise SettingsError(f"{path}: API resource {resource.name!r}: scope {scope!r} has "
                                    f"characters RFC 6749 §3.3 does not allow in a scope")
            # One owner per scope, so that a scope maps to exactly one audience.
            if scope in api_scopes or scope in identity:
                raise SettingsError(f"{path}: scope {scope!r} is defined twice (API resource "
                                    f"{resource.name!r})")
            api_scopes[scope] = resource
    return identity, api_scopes


def _read_client(entry: _Entry, scopes: tuple[str, ...]) -> Client:
    client_id = entry.string("client_id")
    if not _CLIENT_ID.match(client_id):
        raise entry.fail(f"client_id {client_id!r} must be 1-200 printable ASCII characters")
    secret_hash = entry.raw.get("secret_hash")
    if secret_hash is not None and (not isinstance(secret_hash, str) or not HASH_PATTERN.match(secret_hash)):
        raise entry.fail("'secret_hash' must be 'sha256:' and 64 lowercase hex digits: create it with "
                         "scripts/hash_client_secret.py")
    client = Client(
        client_id=client_id,
        name=entry.string("name", client_id),
        secret_hash=secret_hash,
        grant_types=entry.strings("grant_types"),
        scopes=entry.strings("scopes"),
        redirect_uris=entry.strings("redirect_uris"),
        post_logout_redirect_uris=entry.strings("post_logout_redirect_uris"),
        require_pkce=entry.boolean("require_pkce", True),
        access_token_lifetime=entry.integer("access_token_lifetime", DEFAULT_ACCESS_TOKEN_LIFETIME, minimum=1),
        require_consent=entry.boolean("require_consent", False),
        backchannel_logout_uri=entry.raw.get("backchannel_logout_uri"),
    )
    uri = client.backchannel_logout_uri
    if uri is not None and (not isinstance(uri, str) or not uri.startswith(("http://", "https://"))
                            or "#" in uri):
        raise entry.fail(f"'backchannel_logout_uri' must be an http(s) URL without a fragment, not {uri!r}")
    for redirect_uri in (*client.redirect_uris, *client.post_logout_redirect_uris):
        # RFC 6749 §3.1.2: an absolute URI without a fragment.
        if not redirect_uri.startswith(("http://", "https://")) or "#" in redirect_uri:
            raise entry.fail(f"redirect URI {redirect_uri!r} must be an absolute http(s) URL without a fragment")
    if "authorization_code" in client.grant_types and not client.redirect_uris:
        raise entry.fail(f"client {client_id!r} uses authorization_code but has no redirect_uris")
    if not client.grant_types:
        raise entry.fail(f"client {client_id!r} has no grant_types")
    for grant in client.grant_types:
        if grant not in KNOWN_GRANT_TYPES:
            raise entry.fail(f"client {client_id!r} names unknown grant type {grant!r}: use one of "
                             f"{', '.join(KNOWN_GRANT_TYPES)}")
    for scope in client.scopes:
        if scope not in scopes:
            raise entry.fail(f"client {client_id!r} is granted scope {scope!r}, which no identity scope "
                             f"or API resource defines")
    if "client_credentials" in client.grant_types and not client.confidential:
        raise entry.fail(f"client {client_id!r} uses client_credentials but has no secret_hash")
    if not client.require_pkce:
        # PKCE is required for every client by the protocol profile (RFC 9700 §2.1.1).
        raise entry.fail(f"client {client_id!r}: require_pkce = false is not supported")
    return client


def load_registry(path: Path) -> Registry:
    """Read and check the clients file; raise SettingsError naming the first problem."""
    raw = _read_file(path)
    identity, api_scopes = _read_scopes(raw, path)
    resources = {resource.name: resource for resource in api_scopes.values()}
    known_scopes = (*identity, *api_scopes)
    clients: dict[str, Client] = {}
    for index, table in enumerate(_tables(raw, "clients", path)):
        client = _read_client(_Entry(table, f"clients[{index}]", path), known_scopes)
        if client.client_id in clients:
            raise SettingsError(f"{path}: client {client.client_id!r} is defined twice")
        clients[client.client_id] = client
    return Registry(
        clients=MappingProxyType(clients),
        identity_scopes=MappingProxyType(identity),
        api_scopes=MappingProxyType(api_scopes),
        resources=MappingProxyType(resources),
    )
