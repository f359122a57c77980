"""Settings of movies_srv, read from conf/common.toml and conf/movies.toml."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from servicekit.settings import CommonSettings, Reader, load_raw, read_common

SERVICE = "movies_srv"
ENV_PREFIX = "MOVIES"
DEFAULT_PORT = 5001


@dataclass(frozen=True)
class Settings:
    common: CommonSettings


def load_settings(env: Mapping[str, str] = os.environ) -> Settings:
    reader = Reader(load_raw("movies.toml", ENV_PREFIX, env), "conf/movies.toml or the environment")
    common = read_common(reader, SERVICE, DEFAULT_PORT, uses_mongo=True,
                         redis_prefix="movies:", mongo_database="movies")
    return Settings(common=common)
