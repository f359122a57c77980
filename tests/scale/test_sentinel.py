"""A `redis+sentinel://` URL against a real Sentinel: one primary, one replica, one sentinel."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest
import redis

from servicekit.embedded import free_port
from servicekit.settings import RedisSettings
from servicekit.stores import Stores, create_redis

pytestmark = pytest.mark.slow

SERVICE_NAME = "mymaster"


def wait_until(probe, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except redis.RedisError:
            pass
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the Sentinel setup")


@pytest.fixture
def sentinel_setup(tmp_path):
    """Start a primary, its replica and a sentinel; yield (sentinel port, primary port, replica port)."""
    primary, replica, sentinel = free_port(), free_port(), free_port()
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0"]
    config = tmp_path / "sentinel.conf"
    config.write_text(f"port {sentinel}\nbind 127.0.0.1\nsentinel monitor {SERVICE_NAME} 127.0.0.1 {primary} 1\n"
                      f"sentinel down-after-milliseconds {SERVICE_NAME} 1000\n"
                      f"sentinel failover-timeout {SERVICE_NAME} 5000\n")
    processes = [
        subprocess.Popen(["redis-server", "--port", str(primary), *common, "--dir", str(tmp_path)],
                         stdout=subprocess.DEVNULL),
        subprocess.Popen(["redis-server", "--port", str(replica), *common, "--dir", str(tmp_path),
                          "--replicaof", "127.0.0.1", str(primary)], stdout=subprocess.DEVNULL),
        subprocess.Popen(["redis-server", str(config), "--sentinel"], stdout=subprocess.DEVNULL),
    ]
    try:
        wait_until(lambda: redis.Redis(port=replica).info("replication")["master_link_status"] == "up")
        wait_until(lambda: redis.Redis(port=sentinel).sentinel_master(SERVICE_NAME)["num-slaves"] == 1)
        yield sentinel, primary, replica
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


def test_sentinel_url_follows_failover(sentinel_setup):
    sentinel, primary, replica = sentinel_setup
    url = f"redis+sentinel://127.0.0.1:{sentinel}/{SERVICE_NAME}/0"

    async def action():
        client = create_redis(RedisSettings(url=url, key_prefix="", connect_timeout=2.0, command_timeout=2.0))
        try:
            await client.set("family", "current", ex=600)
            await client.execute_command("WAIT", 1, 1000)
            before = (await client.info("server"))["tcp_port"]
            # A manual failover promotes the replica, as Sentinel does when the primary fails.
            # Sentinel refuses until it has fresh INFO from the replica (NOGOODSLAVE).
            wait_until(lambda: redis.Redis(port=sentinel).execute_command("SENTINEL", "FAILOVER", SERVICE_NAME))
            deadline = time.monotonic() + 30
            # Done once the replica is the primary and the old primary its replica.
            while time.monotonic() < deadline:
                roles = [redis.Redis(port=port).info("replication")["role"] for port in (replica, primary)]
                if roles == ["master", "slave"]:
                    break
                await asyncio.sleep(0.2)
            after_value = None
            while time.monotonic() < deadline:
                try:
                    await client.set("written-after", "1")
                    after_value = await client.get("family")
                    break
                except redis.exceptions.RedisError:
                    await asyncio.sleep(0.2)
            after = (await client.info("server"))["tcp_port"]
            return before, after, after_value
        finally:
            await client.aclose()

    before, after, value = asyncio.run(action())
    assert before == primary
    assert after == replica
    assert value == b"current"


def test_closing_stores_closes_sentinel_connections(sentinel_setup):
    sentinel, _, _ = sentinel_setup
    url = f"redis+sentinel://127.0.0.1:{sentinel}/{SERVICE_NAME}/0"
    monitor = redis.Redis(port=sentinel)

    def sentinel_clients() -> int:
        # The monitor's own connection is one of them.
        return monitor.info("clients")["connected_clients"]

    async def action() -> int:
        stores = Stores(redis=create_redis(RedisSettings(url=url, key_prefix="", connect_timeout=2.0,
                                                         command_timeout=2.0)), mongo=None)
        await stores.redis.ping()
        while_open = sentinel_clients()
        await stores.close()
        return while_open

    idle = sentinel_clients()
    while_open = asyncio.run(action())
    assert while_open > idle
    wait_until(lambda: sentinel_clients() == idle, timeout=5)
