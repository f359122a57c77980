"""Fixtures for the resource-server toolkit: a running test issuer and validators."""

from __future__ import annotations

import pytest
import redis.asyncio

from servicekit.resource import AccessTokenValidator, ValidatorSettings
from tests.support.test_issuer import AUDIENCE, TestIssuer

REALM = "test"


@pytest.fixture
def issuer():
    issuer = TestIssuer().start()
    yield issuer
    issuer.stop()


@pytest.fixture
def make_validator(issuer, redis_url):
    """Return a factory of validators for `issuer`; keyword arguments override settings."""
    clients = []

    def make(redis_client_url: str = redis_url, **overrides) -> AccessTokenValidator:
        settings = ValidatorSettings(issuer=issuer.url, audience=AUDIENCE, realm=REALM, **overrides)
        client = redis.asyncio.Redis.from_url(redis_client_url, socket_connect_timeout=1,
                                              socket_timeout=1)
        clients.append(client)
        return AccessTokenValidator(settings, client)

    yield make
