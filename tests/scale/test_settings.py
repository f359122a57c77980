"""`http.workers` and the Redis deployment URLs in the shared settings."""

from __future__ import annotations

import pytest

from servicekit.settings import (
    Reader,
    SettingsError,
    default_workers,
    read_redis_url,
    read_workers,
)
from servicekit.stores import RedisAddress, parse_redis_url


def workers_of(value) -> int:
    return read_workers(Reader({"http": {"workers": value}}, "conf/common.toml"), "http.workers")


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param("auto", default_workers(), id="auto-is-cores"),
    pytest.param(None, default_workers(), id="unset-is-cores"),
    pytest.param(0, 1, id="zero-is-one-process"),
    pytest.param(1, 1, id="one"),
    pytest.param("3", 3, id="text-from-environment"),
])
def test_workers_values(value, expected):
    assert workers_of(value) == expected


@pytest.mark.parametrize(("value", "message"), [
    pytest.param(-1, "setting 'http.workers' is -1: use a value from 0 to 256", id="negative"),
    pytest.param("many", "setting 'http.workers' is 'many': set it to a whole number", id="not-a-number"),
    pytest.param(257, "setting 'http.workers' is 257: use a value from 0 to 256", id="too-many"),
])
def test_workers_invalid(value, message):
    with pytest.raises(SettingsError) as caught:
        workers_of(value)
    assert str(caught.value) == f"{message} in conf/common.toml"


def test_cluster_url_parts():
    assert parse_redis_url("rediss+cluster://app:p%40ss@10.0.0.1:7000,10.0.0.2:7001") == RedisAddress(
        nodes=(("10.0.0.1", 7000), ("10.0.0.2", 7001)), tls=True, username="app", password="p@ss")


def test_sentinel_url_parts():
    assert parse_redis_url("redis+sentinel://:secret@s1:26379,s2:26379/mymaster/2") == RedisAddress(
        nodes=(("s1", 26379), ("s2", 26379)), tls=False, username=None, password="secret",
        service_name="mymaster", db=2)


@pytest.mark.parametrize(("url", "fix"), [
    pytest.param("redis+sentinel://s1:26379", "a Sentinel URL needs /service_name or /service_name/db after "
                 "the hosts", id="sentinel-without-service"),
    pytest.param("redis+sentinel://s1:26379/mymaster/x", "a Sentinel URL needs /service_name or "
                 "/service_name/db after the hosts", id="sentinel-db-not-number"),
    pytest.param("redis+cluster://n1:7000/0", "a Cluster URL takes no path: a cluster has database 0 only",
                 id="cluster-with-database"),
    pytest.param("redis+cluster://n1:7000,n2", "'n2' in the Redis URL is not host:port", id="node-without-port"),
])
def test_redis_url_invalid(url, fix):
    with pytest.raises(SettingsError) as caught:
        read_redis_url(Reader({"redis": {"url": url}}, "REDIS_URL"), "redis.url")
    assert str(caught.value) == f"setting 'redis.url' is {url!r}: {fix} in REDIS_URL"
