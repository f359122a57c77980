"""What the endpoints of one instance share: settings, clients, keys and Redis."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio

from .clients import Registry
from .keyring import KeyRing
from .settings import Settings


@dataclass(frozen=True)
class Provider:
    settings: Settings
    keyring: KeyRing
    redis: redis.asyncio.Redis

    @property
    def issuer(self) -> str:
        return self.settings.common.issuer

    @property
    def registry(self) -> Registry:
        return self.settings.registry
