"""Real identity_srv processes against the session's Redis and SecantusDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.identity import identity_service, start_identity  # noqa: F401  (fixture)
from tests.support.processes import ServiceProcess

CONF_CLIENTS = Path(__file__).resolve().parents[2] / "conf" / "clients.toml"

# A third confidential machine client, so that tests can tell clients apart.
OTHER_CLIENT = '''
[[clients]]
client_id = "reportClient"
secret_hash = "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
grant_types = ["client_credentials"]
# openid is granted so that a test can ask for it without a user.
scopes = ["movieAPI", "openid"]
access_token_lifetime = 600

# An id with a colon and a secret with '+', ':', '%', a space and a non-ASCII
# letter, which Basic authentication must carry form-urlencoded (RFC 6749 §2.3.1).
[[clients]]
client_id = "batch:jobs"
secret_hash = "sha256:bbe2ac95845207a2f811974fd57aa5aff369fbf3191bc7c09651591f382bf8f5"
grant_types = ["client_credentials"]
scopes = ["movieAPI"]
'''
ODD_CLIENT_ID = "batch:jobs"
ODD_CLIENT_SECRET = "p+ss:w rd/%25é"



@pytest.fixture
def provider_factory(store_env, tmp_path):
    """Start identity_srv processes with extra environment; all are stopped after the test."""
    started: list[ServiceProcess] = []

    def start(**extra_env: str) -> ServiceProcess:
        log = tmp_path / f"identity_srv-{len(started)}.log"
        service = start_identity(store_env, log, **extra_env)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def write_clients_file(folder: Path, extra: str = OTHER_CLIENT, lifetime: int | None = None) -> str:
    """Write the demo clients file plus `extra` TOML into `folder`; optionally replace lifetimes."""
    text = CONF_CLIENTS.read_text()
    if lifetime is not None:
        text = text.replace("access_token_lifetime = 3600", f"access_token_lifetime = {lifetime}")
    path = folder / "clients.toml"
    path.write_text(text + extra)
    return str(path)


@pytest.fixture
def clients_file(tmp_path):
    return lambda extra=OTHER_CLIENT, lifetime=None: write_clients_file(tmp_path, extra, lifetime)


@pytest.fixture(scope="module")
def shared_provider(redis_proc, mongo_proc, tmp_path_factory):
    """One identity_srv for a whole module of tests that create no keys themselves."""
    folder = tmp_path_factory.mktemp("identity")
    env = {"REDIS_URL": redis_proc.url, "MONGO_URL": mongo_proc.url, "LOG_LEVEL": "info",
           "IDENTITY__MONGO__DATABASE": f"identity_{folder.name}",
           "IDENTITY__CLIENTS__FILE": write_clients_file(folder)}
    service = start_identity(env, folder / "identity_srv.log")
    yield service
    service.stop()


@pytest.fixture
def provider(provider_factory, clients_file):
    """identity_srv with the demo clients and `reportClient` (secret `secret`)."""
    return provider_factory(IDENTITY__CLIENTS__FILE=clients_file())
