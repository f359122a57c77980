from __future__ import annotations

import pytest

from .redis_cluster import LocalRedisCluster


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    cluster = LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_url(redis_cluster) -> str:
    """A `redis+cluster://` URL of the local cluster, emptied for each test."""
    redis_cluster.flush()
    return redis_cluster.url
