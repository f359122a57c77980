"""Settings of identity_srv, read from conf/common.toml, conf/identity.toml and the clients file.

Everything here is configuration, identical on every instance. State, such as
revoked token ids and signing keys, lives in Redis and MongoDB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from servicekit.settings import CommonSettings, Reader, SettingsError, find_conf_dir, load_raw, read_common

from .clients import Registry, load_registry
from .login_throttle import ThrottleLimits
from .passwords import MAX_COST, MIN_COST
from .secrets import DEVELOPMENT_SECRET_HASH

SERVICE = "identity_srv"
ENV_PREFIX = "IDENTITY"
DEFAULT_PORT = 5005

SIGNING_ALGORITHMS = ("RS256", "ES256")

# The key-encryption passphrase shipped in conf/identity.toml for development.
DEVELOPMENT_KEY_PASSPHRASE = "development-only-key-passphrase"


@dataclass(frozen=True)
class KeySettings:
    """Signing keys: algorithm, encryption at rest and the rotation schedule (seconds)."""

    algorithm: str
    # Encrypts private keys in MongoDB; every instance needs the same value.
    encryption_passphrase: str
    collection: str
    # A new key is published in the JWKS this long before it signs, so that
    # resource servers that cache the JWKS learn it first.
    announce_period: int
    # A retired key stays in the JWKS this long beyond the longest token lifetime,
    # to cover clock skew between the provider and resource servers.
    retirement_margin: int
    # Time between scheduled rotations; 0 turns scheduled rotation off.
    rotation_interval: int
    # How often each instance reloads keys from MongoDB and advances their states.
    reload_interval: float
    # `Cache-Control: max-age` of the JWKS document.
    jwks_max_age: int


@dataclass(frozen=True)
class SignInSettings:
    """Browser sign-in: cookie, lifetimes in seconds, and the password hash cost."""

    cookie_name: str
    session_lifetime: int
    remember_lifetime: int
    # How long a user has to finish signing in once the authorization request arrived.
    interaction_lifetime: int
    code_lifetime: int
    # How long a used code is remembered, so that its replay revokes its tokens.
    code_replay_window: int
    id_token_lifetime: int
    refresh_idle_lifetime: int
    refresh_absolute_lifetime: int
    # Seconds in which a second use of a just-rotated refresh token fails without
    # revoking its family, for clients that refresh from two places at once.
    refresh_reuse_grace: float
    bcrypt_cost: int
    throttle_user: ThrottleLimits
    throttle_address: ThrottleLimits


@dataclass(frozen=True)
class Settings:
    common: CommonSettings
    keys: KeySettings
    clients_file: Path
    registry: Registry
    signin: SignInSettings


def _read_keys(reader: Reader) -> KeySettings:
    keys = KeySettings(
        algorithm=reader.string("keys.algorithm", "RS256").upper(),
        encryption_passphrase=reader.string("keys.encryption_passphrase"),
        collection=reader.string("keys.collection", "signing_keys"),
        announce_period=reader.integer("keys.announce_period", 86_400, minimum=0),
        retirement_margin=reader.integer("keys.retirement_margin", 300, minimum=0),
        rotation_interval=reader.integer("keys.rotation_interval", 30 * 86_400, minimum=0),
        reload_interval=reader.number("keys.reload_interval", 10.0, minimum=0.05),
        jwks_max_age=reader.integer("keys.jwks_max_age", 300, minimum=0),
    )
    if keys.algorithm not in SIGNING_ALGORITHMS:
        raise SettingsError(f"setting 'keys.algorithm' is {keys.algorithm!r}: use one of "
                            f"{', '.join(SIGNING_ALGORITHMS)} in {reader.source}")
    # Every instance and every JWKS cache must have seen a new key before it signs.
    needed = keys.reload_interval + keys.jwks_max_age
    if keys.announce_period < needed:
        raise SettingsError(f"setting 'keys.announce_period' is {keys.announce_period}: use at least "
                            f"keys.reload_interval + keys.jwks_max_age = {needed:g} seconds in "
                            f"{reader.source}")
    return keys


def _read_throttle(reader: Reader, kind: str, delay_after: int, lock_after: int) -> ThrottleLimits:
    prefix = f"login_throttle.{kind}_"
    limits = ThrottleLimits(
        delay_after=reader.integer(prefix + "delay_after", delay_after, minimum=1),
        lock_after=reader.integer(prefix + "lock_after", lock_after, minimum=1),
        lock_seconds=reader.integer(prefix + "lock_seconds", 900, minimum=1),
        max_delay=reader.integer(prefix + "max_delay", 30, minimum=1),
        window=reader.integer(prefix + "window", 900, minimum=1),
    )
    if limits.lock_after <= limits.delay_after:
        raise SettingsError(f"setting '{prefix}lock_after' is {limits.lock_after}: use a value above "
                            f"{prefix}delay_after ({limits.delay_after}) in {reader.source}")
    return limits


def _read_signin(reader: Reader, registry: Registry) -> SignInSettings:
    signin = SignInSettings(
        cookie_name=reader.string("signin.cookie_name", "idp.session"),
        session_lifetime=reader.integer("signin.session_lifetime", 8 * 3600, minimum=60),
        remember_lifetime=reader.integer("signin.remember_lifetime", 14 * 86_400, minimum=60),
        interaction_lifetime=reader.integer("signin.interaction_lifetime", 600, minimum=30),
        code_lifetime=reader.integer("signin.code_lifetime", 60, minimum=1, maximum=600),
        code_replay_window=reader.integer("signin.code_replay_window", registry.max_access_token_lifetime(),
                                          minimum=60),
        id_token_lifetime=reader.integer("signin.id_token_lifetime", 300, minimum=30),
        refresh_idle_lifetime=reader.integer("signin.refresh_idle_lifetime", 15 * 86_400, minimum=60),
        refresh_absolute_lifetime=reader.integer("signin.refresh_absolute_lifetime", 30 * 86_400, minimum=60),
        refresh_reuse_grace=reader.number("signin.refresh_reuse_grace", 2.0),
        bcrypt_cost=reader.integer("passwords.bcrypt_cost", MIN_COST, minimum=MIN_COST, maximum=MAX_COST),
        throttle_user=_read_throttle(reader, "user", delay_after=5, lock_after=10),
        throttle_address=_read_throttle(reader, "address", delay_after=20, lock_after=100),
    )
    if signin.refresh_idle_lifetime > signin.refresh_absolute_lifetime:
        raise SettingsError(f"setting 'signin.refresh_idle_lifetime' is {signin.refresh_idle_lifetime}: use at "
                            f"most signin.refresh_absolute_lifetime ({signin.refresh_absolute_lifetime}) in "
                            f"{reader.source}")
    return signin


def reject_development_credentials(settings: Settings) -> None:
    """Raise SettingsError for an https issuer while a development credential is configured.

    An https issuer marks a production deployment, where the shipped client
    secrets and key passphrase are public knowledge.
    """
    issuer = settings.common.issuer
    if not issuer.startswith("https://"):
        return
    found = [f"client {client.client_id!r} has the development secret"
             for client in settings.registry.clients.values() if client.secret_hash == DEVELOPMENT_SECRET_HASH]
    if settings.keys.encryption_passphrase == DEVELOPMENT_KEY_PASSPHRASE:
        found.append("keys.encryption_passphrase is the development passphrase")
    if found:
        raise SettingsError(f"issuer {issuer} is https but {'; '.join(found)}: replace them "
                            f"(see docs/identity.md, 'Replacing the development credentials')")


def load_settings(env: Mapping[str, str] = os.environ) -> Settings:
    reader = Reader(load_raw("identity.toml", ENV_PREFIX, env), "conf/identity.toml or the environment")
    common = read_common(reader, SERVICE, DEFAULT_PORT, uses_mongo=True,
                         redis_prefix="idp:", mongo_database="identity")
    keys = _read_keys(reader)
    clients_file = Path(reader.string("clients.file", "clients.toml"))
    if not clients_file.is_absolute():
        clients_file = find_conf_dir(env) / clients_file
    registry = load_registry(clients_file)
    return Settings(common=common, keys=keys, clients_file=clients_file, registry=registry,
                    signin=_read_signin(reader, registry))


def load_settings_to_serve(env: Mapping[str, str] = os.environ) -> Settings:
    """Load the settings for a serving instance: `load_settings` plus the production checks."""
    settings = load_settings(env)
    reject_development_credentials(settings)
    return settings
