"""Session-wide real stores: a private redis-server and a SecantusDB server.

Both start once per test session on free ports in temporary directories and stop
at the end. Each test that asks for `redis_url` or `mongo_url` starts from an empty
Redis keyspace and no application databases. At the end of the session, every
log file a service process wrote is scanned for strings shaped like secrets.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis
from pymongo import MongoClient

from servicekit.embedded import EmbeddedServer, free_port, redis_server, secantus_server
from tests.support.processes import LOG_PATHS

SYSTEM_DATABASES = {"admin", "local", "config"}


@pytest.fixture(scope="session")
def redis_proc(tmp_path_factory) -> EmbeddedServer:
    server = redis_server(free_port(), tmp_path_factory.mktemp("redis"), persistent=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongo_proc(tmp_path_factory) -> EmbeddedServer:
    server = secantus_server(free_port(), tmp_path_factory.mktemp("secantusdb"))
    server.start(timeout=60)
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_proc) -> str:
    client = redis.Redis.from_url(redis_proc.url)
    client.flushall()
    client.close()
    return redis_proc.url


@pytest.fixture
def mongo_url(mongo_proc) -> str:
    client = MongoClient(mongo_proc.url, serverSelectionTimeoutMS=5000)
    for name in client.list_database_names():
        if name not in SYSTEM_DATABASES:
            client.drop_database(name)
    client.close()
    return mongo_proc.url


@pytest.fixture
def store_env(redis_url, mongo_url) -> dict[str, str]:
    """Environment that points a service at the test stores."""
    return {"REDIS_URL": redis_url, "MONGO_URL": mongo_url, "LOG_LEVEL": "info"}


# Shapes of secrets that must never reach a service log: JWTs (access, ID and
# logout tokens), identity_srv's refresh tokens (`<22-character family id>.<43
# characters>`), and secret-bearing form pairs that the redacting filter missed.
SECRET_SHAPES = {
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\."),
    "refresh token": re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])"),
    "password pair": re.compile(r"(?i)\bpassword=(?!\[redacted\])[^\s&\"',;]+"),
    "client_secret pair": re.compile(r"(?i)\bclient_secret=(?!\[redacted\])[^\s&\"',;]+"),
}


def secrets_in_logs(paths: list[Path]) -> list[str]:
    """Return one line per secret-shaped string found in the files at `paths`."""
    findings = []
    for path in paths:
        if not path.exists():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for kind, shape in SECRET_SHAPES.items():
                match = shape.search(line)
                if match:
                    findings.append(f"{path}:{number}: {kind}: {match.group(0)[:40]}")
    return findings


@pytest.fixture(scope="session", autouse=True)
def service_logs_hold_no_secrets():
    """After the whole session, fail if any service process logged something shaped like a secret."""
    yield
    findings = secrets_in_logs(LOG_PATHS)
    assert not findings, "secrets in service logs:\n" + "\n".join(findings[:20])
