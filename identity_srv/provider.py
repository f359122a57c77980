"""What the endpoints of one instance share: settings, keys, and the stores of each concern."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio

from .clients import Registry
from .codes import CodeStore
from .consents import ConsentStore
from .interactions import InteractionStore
from .keyring import KeyRing
from .login_throttle import LoginThrottle
from .passwords import PasswordHasher
from .refresh_tokens import RefreshTokenStore
from .sessions import SessionStore
from .settings import Settings
from .users import UserStore


@dataclass(frozen=True)
class Provider:
    settings: Settings
    keyring: KeyRing
    redis: redis.asyncio.Redis
    users: UserStore
    hasher: PasswordHasher
    sessions: SessionStore
    interactions: InteractionStore
    consents: ConsentStore
    codes: CodeStore
    refresh_tokens: RefreshTokenStore
    login_throttle: LoginThrottle

    @property
    def issuer(self) -> str:
        return self.settings.common.issuer

    @property
    def registry(self) -> Registry:
        return self.settings.registry
