"""Signing-key rotation end to end: announcement, switch, retirement, removal, races."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import jwt
from pymongo import AsyncMongoClient, MongoClient

from identity_srv.keystore import ANNOUNCED, KeyStore
from servicekit.embedded import free_port
from tests.support.identity import basic_authorization, client_credentials_token, post_form
from tests.support.processes import ROOT, ServiceProcess, get_status, wait_for

ROTATE = [sys.executable, str(ROOT / "scripts" / "rotate_keys.py")]

# Short periods so a whole key life fits in a test: announced for 2 s, tokens
# live 10 s, so a retired key leaves the JWKS 10.2 s after the switch.
FAST_KEYS = {
    "IDENTITY__KEYS__ANNOUNCE_PERIOD": "2",
    "IDENTITY__KEYS__RELOAD_INTERVAL": "0.2",
    "IDENTITY__KEYS__JWKS_MAX_AGE": "0",
    "IDENTITY__KEYS__RETIREMENT_MARGIN": "0",
    "IDENTITY__KEYS__ROTATION_INTERVAL": "0",
}


def jwks_kids(url: str) -> list[str]:
    status, body = get_status(f"{url}/.well-known/openid-configuration/jwks")
    assert status == 200
    return [key["kid"] for key in json.loads(body)["keys"]]


def verify(url: str, token: str) -> dict:
    jwks_client = jwt.PyJWKClient(f"{url}/.well-known/openid-configuration/jwks", cache_keys=False)
    key = jwks_client.get_signing_key_from_jwt(token)
    return jwt.decode(token, key, algorithms=["RS256"], audience="movieAPI", issuer=url)


def run_rotate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*ROTATE, *args], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def stored_keys(mongo_url: str) -> list[dict]:
    client = MongoClient(mongo_url)
    try:
        return list(client.identity.signing_keys.find({}, {"private_pem": 0}).sort("generation", 1))
    finally:
        client.close()


def test_rotation_end_to_end(provider_factory, clients_file, store_env):
    env = {**FAST_KEYS, "IDENTITY__CLIENTS__FILE": clients_file(extra="", lifetime=10)}
    service = provider_factory(**env)
    [old_kid] = jwks_kids(service.url)
    old_token = client_credentials_token(service.url)
    assert jwt.get_unverified_header(old_token)["kid"] == old_kid

    result = run_rotate({**store_env, **env})
    assert result.returncode == 0, result.stderr
    new_kid = [key["_id"] for key in stored_keys(store_env["MONGO_URL"])][-1]
    assert f"announced key {new_kid}; it signs after 2 s" in result.stdout

    # Announced: published beside the old key, which still signs.
    wait_for(lambda: jwks_kids(service.url) == [old_kid, new_kid], 5, message="new key in the JWKS")
    assert jwt.get_unverified_header(client_credentials_token(service.url))["kid"] == old_kid

    # After the announce period the new key signs, and tokens of both keys verify.
    wait_for(lambda: jwt.get_unverified_header(client_credentials_token(service.url))["kid"] == new_kid, 5,
             message="the new key to sign")
    new_token = client_credentials_token(service.url)
    assert verify(service.url, old_token)["sub"] == "movieClient"
    assert verify(service.url, new_token)["sub"] == "movieClient"
    wait_for(lambda: [key["state"] for key in stored_keys(store_env["MONGO_URL"])] == ["retired", "signing"], 5,
             message="the old key to be retired")
    assert jwks_kids(service.url) == [old_kid, new_kid]

    # Once every token of the old key has expired, the key leaves the JWKS.
    wait_for(lambda: jwks_kids(service.url) == [new_kid], 15, message="the retired key to leave the JWKS")
    assert [key["_id"] for key in stored_keys(store_env["MONGO_URL"])] == [new_kid]
    assert verify(service.url, client_credentials_token(service.url))["sub"] == "movieClient"
    log = service.log()
    assert f"retired signing key {old_kid}" in log
    assert "removed 1 retired signing key(s) from the JWKS" in log


def test_rotation_during_announcement_creates_nothing(provider_factory, store_env):
    env = {**FAST_KEYS, "IDENTITY__KEYS__ANNOUNCE_PERIOD": "60"}
    provider_factory(**env)
    assert "announced key" in run_rotate({**store_env, **env}).stdout
    second = run_rotate({**store_env, **env})
    assert second.returncode == 0
    assert second.stdout.startswith("no new key: a key is already announced")
    assert [key["state"] for key in stored_keys(store_env["MONGO_URL"])] == ["signing", "announced"]


def test_two_concurrent_rotations_create_one_key(provider_factory, store_env):
    env = {**FAST_KEYS, "IDENTITY__KEYS__ANNOUNCE_PERIOD": "60"}
    provider_factory(**env)
    processes = [subprocess.Popen(ROTATE, env={**os.environ, **store_env, **env}, cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0, 0]
    announced = [stdout for stdout, _ in outputs if "announced key" in stdout]
    assert len(announced) == 1, outputs
    assert [key["generation"] for key in stored_keys(store_env["MONGO_URL"])] == [1, 2]


def test_racing_key_stores_insert_one_generation(mongo_url):
    # Two stores with their own connections rotate at once. Both read the keys
    # before either inserts (key generation runs in a thread between the two), so
    # the unique index on generation is what keeps the second key out.
    async def race() -> list[str | None]:
        clients = [AsyncMongoClient(mongo_url) for _ in range(2)]
        try:
            stores = [KeyStore(client.identity.signing_keys, "passphrase", "RS256", 60, 60) for client in clients]
            await stores[0].ensure_indexes()
            await stores[0].create_first_key()
            return await asyncio.gather(*(store.rotate() for store in stores))
        finally:
            for client in clients:
                await client.close()

    results = asyncio.run(race())
    assert sorted(result is None for result in results) == [False, True]
    keys = stored_keys(mongo_url)
    assert [(key["generation"], key["state"]) for key in keys] == [(1, "signing"), (2, ANNOUNCED)]


def test_two_instances_starting_at_once_create_one_key(store_env, tmp_path):
    services = [ServiceProcess("identity_srv", store_env, tmp_path / f"identity-{index}.log") for index in range(2)]
    for service in services:
        service.env["ISSUER"] = "http://localhost:5005"
        service.start(wait=False)
    try:
        for service in services:
            wait_for(service._healthy, 20, message="identity_srv /healthz")
        assert len(stored_keys(store_env["MONGO_URL"])) == 1
        assert jwks_kids(services[0].url) == jwks_kids(services[1].url)
        first = jwt.get_unverified_header(client_credentials_token(services[0].url))["kid"]
        second = jwt.get_unverified_header(client_credentials_token(services[1].url))["kid"]
        assert first == second
    finally:
        for service in services:
            service.stop()


def test_scheduled_rotation(provider_factory, store_env):
    env = {**FAST_KEYS, "IDENTITY__KEYS__ROTATION_INTERVAL": "1", "IDENTITY__KEYS__ANNOUNCE_PERIOD": "60"}
    service = provider_factory(**env)
    wait_for(lambda: len(jwks_kids(service.url)) == 2, 10, message="a scheduled rotation")
    assert [key["state"] for key in stored_keys(store_env["MONGO_URL"])] == ["signing", "announced"]


def test_private_keys_are_encrypted_at_rest(provider_factory, store_env):
    provider_factory()
    client = MongoClient(store_env["MONGO_URL"])
    try:
        [doc] = list(client.identity.signing_keys.find({}))
    finally:
        client.close()
    assert doc["private_pem"].startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


def test_wrong_passphrase_stops_the_start(provider_factory, store_env, tmp_path):
    provider_factory()
    env = {**os.environ, **store_env, "IDENTITY_PORT": str(free_port()),
           "IDENTITY__KEYS__ENCRYPTION_PASSPHRASE": "another-passphrase"}
    result = subprocess.run([sys.executable, "-m", "identity_srv"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "cannot be decrypted: keys.encryption_passphrase differs from the passphrase it was stored with" \
        in result.stderr


def test_no_active_key_gives_503(provider_factory, store_env):
    # Only a key that is still announced: nothing may sign yet.
    async def announce_only() -> None:
        client = AsyncMongoClient(store_env["MONGO_URL"])
        try:
            store = KeyStore(client.identity.signing_keys, "development-only-key-passphrase", "RS256", 60, 60)
            await store.ensure_indexes()
            now = time.time()
            assert await store._insert(1, ANNOUNCED, now, now + 600)
        finally:
            await client.close()

    asyncio.run(announce_only())
    service = provider_factory()
    status, headers, body = post_form(f"{service.url}/connect/token", {"grant_type": "client_credentials"},
                                      {"Authorization": basic_authorization("movieClient", "secret")})
    assert status == 503
    assert json.loads(body) == {"error": "temporarily_unavailable",
                                "error_description": "no signing key is active; retry shortly"}
    assert headers["Retry-After"] == "5"
    assert len(jwks_kids(service.url)) == 1
