"""Settings of identity_srv, read from conf/common.toml and conf/identity.toml."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from servicekit.settings import CommonSettings, Reader, load_raw, read_common

SERVICE = "identity_srv"
ENV_PREFIX = "IDENTITY"
DEFAULT_PORT = 5005


@dataclass(frozen=True)
class Settings:
    common: CommonSettings


def load_settings(env: Mapping[str, str] = os.environ) -> Settings:
    reader = Reader(load_raw("identity.toml", ENV_PREFIX, env), "conf/identity.toml or the environment")
    common = read_common(reader, SERVICE, DEFAULT_PORT, uses_mongo=True,
                         redis_prefix="idp:", mongo_database="identity")
    return Settings(common=common)
