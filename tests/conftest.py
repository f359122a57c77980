"""Session-wide real stores: a private redis-server and a SecantusDB server.

Both start once per test session on free ports in temporary directories and stop
at the end. Each test that asks for `redis_url` or `mongo_url` starts from an empty
Redis keyspace and no application databases.
"""

from __future__ import annotations

import pytest
import redis
from pymongo import MongoClient

from servicekit.embedded import EmbeddedServer, free_port, redis_server, secantus_server

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
