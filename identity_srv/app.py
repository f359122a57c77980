"""Build the identity_srv application: keys first, then the stores, then the endpoints."""

from __future__ import annotations

import asyncio
from pathlib import Path

from servicekit.service import Service, make_application
from servicekit.settings import SettingsError
from servicekit.stores import Stores

from .authorize_endpoint import AuthorizeHandler, ResumeHandler
from .codes import CodeStore
from .consent_page import ConsentHandler
from .consents import ConsentStore
from .discovery import (
    AUTHORIZE_PATH, DISCOVERY_PATH, END_SESSION_PATH, INTROSPECTION_PATH, JWKS_PATH, REVOCATION_PATH, TOKEN_PATH,
    USERINFO_PATH,
)
from .end_session import EndSessionHandler
from .handlers import DiscoveryHandler, IntrospectionHandler, JwksHandler, RevocationHandler, TokenHandler
from .interactions import InteractionStore
from .keyring import KeyRing
from .keystore import KeyStore
from .login_page import LoginHandler
from .login_throttle import LoginThrottle
from .pages import CONSENT_PATH, LOGIN_PATH, RESUME_PATH
from .passwords import PasswordHasher
from .provider import Provider
from .refresh_tokens import RefreshTokenStore
from .sessions import SessionStore
from .settings import Settings
from .userinfo import UserInfoHandler
from .users import UserStore

PACKAGE_DIR = Path(__file__).resolve().parent

# The demo users' development passwords, refused once the issuer is https.
DEVELOPMENT_USERS = {"alice": "alice", "bob": "bob"}


def key_store(settings: Settings, stores: Stores) -> KeyStore:
    """Return the key store this configuration describes.

    A key leaves the JWKS once every token it signed has expired: the longest access
    token lifetime after it stopped signing, plus one reload interval (an instance
    may sign with it that long after the switch) and the retirement margin.
    """
    keys = settings.keys
    retire_after = settings.registry.max_access_token_lifetime() + keys.reload_interval + keys.retirement_margin
    return KeyStore(stores.db[keys.collection], keys.encryption_passphrase, keys.algorithm,
                    keys.announce_period, retire_after)


def build_provider(settings: Settings, stores: Stores, keyring: KeyRing) -> Provider:
    """Wire the stores of every concern to this instance's Redis and MongoDB clients."""
    signin = settings.signin
    prefix = settings.common.redis.key_prefix
    redis = stores.redis
    return Provider(
        settings=settings, keyring=keyring, redis=redis,
        users=UserStore(stores.db),
        hasher=PasswordHasher(signin.bcrypt_cost),
        sessions=SessionStore(redis, prefix, signin.session_lifetime, signin.remember_lifetime),
        interactions=InteractionStore(redis, prefix, signin.interaction_lifetime),
        consents=ConsentStore(stores.db),
        codes=CodeStore(redis, prefix, signin.code_lifetime, signin.code_replay_window),
        refresh_tokens=RefreshTokenStore(redis, prefix, signin.refresh_idle_lifetime,
                                         signin.refresh_absolute_lifetime, signin.refresh_reuse_grace),
        login_throttle=LoginThrottle(redis, prefix, signin.throttle_user, signin.throttle_address),
    )


async def reject_development_users(provider: Provider) -> None:
    """Raise SettingsError for an https issuer while a demo user keeps its development password."""
    if not provider.issuer.startswith("https://"):
        return
    for username, password in DEVELOPMENT_USERS.items():
        user = await provider.users.find_by_username(username)
        if user is not None and await provider.hasher.verify(password, user.password_hash):
            raise SettingsError(f"issuer {provider.issuer} is https but user {username!r} still has its "
                                f"development password: change it or remove the user")


async def build(settings: Settings, stores: Stores) -> Service:
    store = key_store(settings, stores)
    await store.ensure_indexes()
    await store.create_first_key()
    keyring = KeyRing(store)
    await keyring.maintain(settings.keys.rotation_interval)

    provider = build_provider(settings, stores, keyring)
    await provider.users.ensure_indexes()
    await reject_development_users(provider)
    endpoint = {"provider": provider}
    routes = [
        (DISCOVERY_PATH, DiscoveryHandler, endpoint),
        (JWKS_PATH, JwksHandler, endpoint),
        (TOKEN_PATH, TokenHandler, endpoint),
        (INTROSPECTION_PATH, IntrospectionHandler, endpoint),
        (REVOCATION_PATH, RevocationHandler, endpoint),
        (AUTHORIZE_PATH, AuthorizeHandler, endpoint),
        (RESUME_PATH, ResumeHandler, endpoint),
        (LOGIN_PATH, LoginHandler, endpoint),
        (CONSENT_PATH, ConsentHandler, endpoint),
        (USERINFO_PATH, UserInfoHandler, endpoint),
        (END_SESSION_PATH, EndSessionHandler, endpoint),
    ]
    secure = settings.common.issuer.startswith("https://")
    app = make_application(
        settings.common, stores, routes,
        template_path=str(PACKAGE_DIR / "templates"),
        static_path=str(PACKAGE_DIR / "static"),
        static_url_prefix="/static/",
        xsrf_cookies=True,
        xsrf_cookie_kwargs={"httponly": True, "samesite": "Strict", "secure": secure, "path": "/"},
    )
    reload_task = asyncio.create_task(keyring.run(settings.keys.reload_interval, settings.keys.rotation_interval))

    async def close_hasher() -> None:
        provider.hasher.close()

    return Service(app=app, tasks=[reload_task], on_close=[close_hasher])
