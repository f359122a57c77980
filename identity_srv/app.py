"""Build the identity_srv application: keys first, then the endpoints."""

from __future__ import annotations

import asyncio

from servicekit.service import Service, make_application
from servicekit.stores import Stores

from .discovery import DISCOVERY_PATH, INTROSPECTION_PATH, JWKS_PATH, REVOCATION_PATH, TOKEN_PATH
from .handlers import DiscoveryHandler, IntrospectionHandler, JwksHandler, RevocationHandler, TokenHandler
from .keyring import KeyRing
from .keystore import KeyStore
from .provider import Provider
from .settings import Settings


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


async def build(settings: Settings, stores: Stores) -> Service:
    store = key_store(settings, stores)
    await store.ensure_indexes()
    await store.create_first_key()
    keyring = KeyRing(store)
    await keyring.maintain(settings.keys.rotation_interval)

    provider = Provider(settings=settings, keyring=keyring, redis=stores.redis)
    routes = [
        (DISCOVERY_PATH, DiscoveryHandler, {"provider": provider}),
        (JWKS_PATH, JwksHandler, {"provider": provider}),
        (TOKEN_PATH, TokenHandler, {"provider": provider}),
        (INTROSPECTION_PATH, IntrospectionHandler, {"provider": provider}),
        (REVOCATION_PATH, RevocationHandler, {"provider": provider}),
    ]
    app = make_application(settings.common, stores, routes)
    reload_task = asyncio.create_task(keyring.run(settings.keys.reload_interval, settings.keys.rotation_interval))
    return Service(app=app, tasks=[reload_task])
