"""movies_srv settings: defaults, overrides, and what stops the service at start."""

from __future__ import annotations

import pytest

from movies_srv.settings import load_settings
from servicekit.settings import SettingsError

STORES = {"REDIS_URL": "redis://127.0.0.1:6399/0", "MONGO_URL": "mongodb://127.0.0.1:27199/"}


def test_defaults():
    settings = load_settings(STORES)
    assert settings.tokens.issuer == "http://localhost:5005"
    assert settings.tokens.audience == "movieAPI"
    assert settings.tokens.algorithms == frozenset({"RS256", "ES256"})
    assert settings.tokens.leeway == 30.0
    assert settings.tokens.jwks_refetch_interval == 30.0
    assert settings.access.known_clients == frozenset({"movieClient", "movies_mvc_client"})
    assert settings.access.machine_tokens_may_write is False
    assert settings.paging.default_limit == 20
    assert settings.paging.max_limit == 100
    assert settings.writes.require_if_match is False


def test_environment_overrides():
    settings = load_settings({**STORES, "ISSUER": "https://id.example.com/",
                              "MOVIES__ACCESS__KNOWN_CLIENTS": '["reportClient"]',
                              "MOVIES__ACCESS__MACHINE_TOKENS_MAY_WRITE": "true",
                              "MOVIES__TOKENS__LEEWAY": "5"})
    assert settings.tokens.issuer == "https://id.example.com"
    assert settings.tokens.discovery_url == "https://id.example.com/.well-known/openid-configuration"
    assert settings.access.known_clients == frozenset({"reportClient"})
    assert settings.access.machine_tokens_may_write is True
    assert settings.tokens.leeway == 5.0


def test_symmetric_algorithm_rejected():
    with pytest.raises(SettingsError) as caught:
        load_settings({**STORES, "MOVIES__TOKENS__ALGORITHMS": '["RS256", "HS256", "none"]'})
    assert str(caught.value).startswith(
        "setting 'tokens.algorithms' contains HS256, none: use only asymmetric algorithms (")


def test_default_limit_above_max_rejected():
    with pytest.raises(SettingsError) as caught:
        load_settings({**STORES, "MOVIES__PAGING__DEFAULT_LIMIT": "500"})
    assert str(caught.value) == ("setting 'paging.default_limit' is 500: use a value from 1 to 100 "
                                 "in conf/movies.toml or the environment")
