"""Settings of gateway_srv, read from conf/common.toml and conf/gateway.toml."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from servicekit.settings import CommonSettings, Reader, load_raw, read_common

SERVICE = "gateway_srv"
ENV_PREFIX = "GATEWAY"
DEFAULT_PORT = 5010


@dataclass(frozen=True)
class Settings:
    common: CommonSettings


def load_settings(env: Mapping[str, str] = os.environ) -> Settings:
    reader = Reader(load_raw("gateway.toml", ENV_PREFIX, env), "conf/gateway.toml or the environment")
    common = read_common(reader, SERVICE, DEFAULT_PORT, uses_mongo=False,
                         redis_prefix="gw:", mongo_database="")
    return Settings(common=common)
