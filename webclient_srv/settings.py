"""Settings of webclient_srv, read from conf/common.toml and conf/webclient.toml."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from servicekit.settings import CommonSettings, Reader, load_raw, read_common

SERVICE = "webclient_srv"
ENV_PREFIX = "WEBCLIENT"
DEFAULT_PORT = 5002


@dataclass(frozen=True)
class Settings:
    common: CommonSettings


def load_settings(env: Mapping[str, str] = os.environ) -> Settings:
    reader = Reader(load_raw("webclient.toml", ENV_PREFIX, env), "conf/webclient.toml or the environment")
    common = read_common(reader, SERVICE, DEFAULT_PORT, uses_mongo=False,
                         redis_prefix="web:", mongo_database="")
    return Settings(common=common)
