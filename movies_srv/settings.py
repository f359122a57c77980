"""Settings of movies_srv, read from conf/common.toml and conf/movies.toml."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from servicekit.resource import ValidatorSettings, read_validator_settings
from servicekit.settings import CommonSettings, Reader, load_raw, read_common

SERVICE = "movies_srv"
ENV_PREFIX = "MOVIES"
DEFAULT_PORT = 5001


@dataclass(frozen=True)
class AccessSettings:
    """Access rules: the scope, the accepted clients, machine writes and the admin role."""

    scope: str
    # `client_id` values whose tokens are accepted.
    known_clients: frozenset[str]
    # Whether client_credentials tokens may create, change and delete movies.
    machine_tokens_may_write: bool
    # The `role` claim value that may change and delete any movie.
    admin_role: str


@dataclass(frozen=True)
class PagingSettings:
    default_limit: int
    max_limit: int


@dataclass(frozen=True)
class WriteSettings:
    # Return 428 to PUT, PATCH and DELETE without If-Match.
    require_if_match: bool


@dataclass(frozen=True)
class Settings:
    common: CommonSettings
    tokens: ValidatorSettings
    access: AccessSettings
    paging: PagingSettings
    writes: WriteSettings


def load_settings(env: Mapping[str, str] = os.environ) -> Settings:
    reader = Reader(load_raw("movies.toml", ENV_PREFIX, env), "conf/movies.toml or the environment")
    common = read_common(reader, SERVICE, DEFAULT_PORT, uses_mongo=True,
                         redis_prefix="movies:", mongo_database="movies")
    tokens = read_validator_settings(
        reader, issuer=common.issuer, audience=reader.string("tokens.audience", "movieAPI"),
        realm=reader.string("tokens.realm", "movies"))
    access = AccessSettings(
        scope=reader.string("access.scope", "movieAPI"),
        known_clients=frozenset(reader.string_list("access.known_clients",
                                                   ["movieClient", "movies_mvc_client"])),
        machine_tokens_may_write=reader.boolean("access.machine_tokens_may_write", False),
        admin_role=reader.string("access.admin_role", "admin"),
    )
    max_limit = reader.integer("paging.max_limit", 100, minimum=1, maximum=1000)
    paging = PagingSettings(
        default_limit=reader.integer("paging.default_limit", 20, minimum=1, maximum=max_limit),
        max_limit=max_limit,
    )
    writes = WriteSettings(require_if_match=reader.boolean("writes.require_if_match", False))
    return Settings(common=common, tokens=tokens, access=access, paging=paging, writes=writes)
