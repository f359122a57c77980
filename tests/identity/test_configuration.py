"""The clients file and key settings: checked at start, one line naming the problem."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from identity_srv.secrets import DEVELOPMENT_SECRET_HASH, hash_secret, verify_secret
from identity_srv.settings import load_settings, load_settings_to_serve
from servicekit.embedded import free_port
from servicekit.settings import SettingsError
from tests.identity.conftest import CONF_CLIENTS
from tests.support.processes import ROOT

STRONG_HASH = hash_secret("k3Jz9_pWq2LmN8vXy4TbR6sUe1AoCdFg")


def settings_with(tmp_path, clients_text: str, **env: str):
    path = tmp_path / "clients.toml"
    path.write_text(clients_text)
    return load_settings_to_serve({"IDENTITY__CLIENTS__FILE": str(path), **env})


def test_demo_configuration_loads():
    settings = load_settings({})
    registry = settings.registry
    assert set(registry.clients) == {"movieClient", "movies_mvc_client"}
    machine = registry.clients["movieClient"]
    assert machine.grant_types == ("client_credentials",)
    assert machine.scopes == ("movieAPI",)
    assert machine.access_token_lifetime == 3600
    web = registry.clients["movies_mvc_client"]
    assert web.grant_types == ("authorization_code", "refresh_token")
    assert web.redirect_uris == ("http://localhost:5002/signin-oidc",)
    assert web.post_logout_redirect_uris == ("http://localhost:5002/signout-callback-oidc",)
    assert web.require_pkce is True
    assert web.scopes == ("openid", "profile", "email", "address", "roles", "movieAPI", "offline_access")
    assert registry.resources["movieAPI"].user_claims == ("role", "name")
    assert registry.audience(("movieAPI",)) == ("movieAPI",)
    assert settings.keys.algorithm == "RS256"


CLIENT = '''
[[clients]]
client_id = "svc"
secret_hash = "{hash}"
grant_types = {grants}
scopes = {scopes}
'''

BAD_FILES = [
    ("fails because the scope is defined by no resource",
     CLIENT.format(hash=STRONG_HASH, grants='["client_credentials"]', scopes='["ordersAPI"]'),
     "clients[2]: client 'svc' is granted scope 'ordersAPI', which no identity scope or API resource defines"),
    ("fails because the grant type is unknown",
     CLIENT.format(hash=STRONG_HASH, grants='["password"]', scopes='["movieAPI"]'),
     "clients[2]: client 'svc' names unknown grant type 'password': use one of authorization_code, "
     "client_credentials, refresh_token"),
    ("fails because the secret is stored in clear",
     CLIENT.format(hash="secret", grants='["client_credentials"]', scopes='["movieAPI"]'),
     "clients[2]: 'secret_hash' must be 'sha256:' and 64 lowercase hex digits: create it with "
     "scripts/hash_client_secret.py"),
    ("fails because the client id is defined twice",
     CLIENT.format(hash=STRONG_HASH, grants='["client_credentials"]', scopes='["movieAPI"]').replace('"svc"', '"movieClient"'),
     "client 'movieClient' is defined twice"),
]


@pytest.mark.parametrize("extra, message", [row[1:] for row in BAD_FILES], ids=[row[0] for row in BAD_FILES])
def test_bad_clients_file_stops_start(tmp_path, extra, message):
    with pytest.raises(SettingsError) as caught:
        settings_with(tmp_path, CONF_CLIENTS.read_text() + extra)
    assert str(caught.value) == f"{tmp_path / 'clients.toml'}: {message}"


def test_https_issuer_rejects_development_credentials(tmp_path):
    with pytest.raises(SettingsError) as caught:
        settings_with(tmp_path, CONF_CLIENTS.read_text(), ISSUER="https://id.example.com")
    assert str(caught.value) == (
        "issuer https://id.example.com is https but client 'movieClient' has the development secret; "
        "client 'movies_mvc_client' has the development secret; keys.encryption_passphrase is the "
        "development passphrase: replace them (see docs/identity.md, 'Replacing the development credentials')")


def test_https_issuer_starts_with_replaced_credentials(tmp_path):
    text = CONF_CLIENTS.read_text().replace(DEVELOPMENT_SECRET_HASH, STRONG_HASH)
    settings = settings_with(tmp_path, text, ISSUER="https://id.example.com",
                             IDENTITY__KEYS__ENCRYPTION_PASSPHRASE="a-production-passphrase-from-a-vault")
    assert settings.common.issuer == "https://id.example.com"


def test_announce_period_must_cover_caches(tmp_path):
    with pytest.raises(SettingsError) as caught:
        load_settings({"IDENTITY__KEYS__ANNOUNCE_PERIOD": "100", "IDENTITY__KEYS__JWKS_MAX_AGE": "300"})
    assert str(caught.value) == ("setting 'keys.announce_period' is 100: use at least keys.reload_interval + "
                                 "keys.jwks_max_age = 310 seconds in conf/identity.toml or the environment")


def test_unknown_algorithm_is_rejected():
    with pytest.raises(SettingsError) as caught:
        load_settings({"IDENTITY__KEYS__ALGORITHM": "HS256"})
    assert str(caught.value) == ("setting 'keys.algorithm' is 'HS256': use one of RS256, ES256 in "
                                 "conf/identity.toml or the environment")


def test_bad_clients_file_stops_process_with_one_line(tmp_path, store_env):
    path = tmp_path / "clients.toml"
    path.write_text(CONF_CLIENTS.read_text() + BAD_FILES[0][1])
    env = {**os.environ, **store_env, "IDENTITY__CLIENTS__FILE": str(path)}
    result = subprocess.run([sys.executable, "-m", "identity_srv"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr == f"configuration error: {path}: {BAD_FILES[0][2]}\n"


def test_secret_digest_round_trip():
    assert hash_secret("secret") == DEVELOPMENT_SECRET_HASH
    assert verify_secret("secret", DEVELOPMENT_SECRET_HASH)
    assert not verify_secret("Secret", DEVELOPMENT_SECRET_HASH)
    assert not verify_secret("", DEVELOPMENT_SECRET_HASH)


def test_hash_script_reads_stdin():
    secret = "k3Jz9_pWq2LmN8vXy4TbR6sUe1AoCdFg"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "hash_client_secret.py")], input=secret,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout == f'secret_hash = "{hash_secret(secret)}"\n'


def test_hash_script_rejects_short_secret():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "hash_client_secret.py")], input="secret",
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("the secret has 6 characters; use at least 22")


def test_mongo_down_at_start_exits_cleanly(redis_url):
    env = {**os.environ, "REDIS_URL": redis_url, "MONGO_URL": f"mongodb://127.0.0.1:{free_port()}/",
           "IDENTITY__MONGO__SERVER_SELECTION_TIMEOUT": "0.5", "IDENTITY_PORT": str(free_port()),
           # One process, so the message is the last line; tests/scale covers workers.
           "IDENTITY__HTTP__WORKERS": "1"}
    result = subprocess.run([sys.executable, "-m", "identity_srv"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith("identity_srv cannot start: MongoDB is unavailable "
                                  "(ServerSelectionTimeoutError); check mongo.url or MONGO_URL\n")


def test_https_issuer_with_development_secret_stops_process(store_env):
    env = {**os.environ, **store_env, "ISSUER": "https://id.example.com", "IDENTITY_PORT": str(free_port())}
    result = subprocess.run([sys.executable, "-m", "identity_srv"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: issuer https://id.example.com is https but client "
                                    "'movieClient' has the development secret;")
