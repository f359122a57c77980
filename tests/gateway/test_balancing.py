"""Load balancing across two real downstreams, host health, and failover without errors."""

from __future__ import annotations

import asyncio
import collections

import aiohttp
import pytest

from .conftest import open_route
from .downstreams import Downstream


@pytest.fixture
def pair(io_loop):
    first = Downstream("a").start()
    second = Downstream("b").start()
    yield first, second
    io_loop.run_sync(first.stop)
    io_loop.run_sync(second.stop)


async def served_by(client: aiohttp.ClientSession, url: str) -> str:
    async with client.get(url) as response:
        await response.read()
        assert response.status == 200, await response.text()
        return response.headers["X-Served-By"]


@pytest.mark.gen_test
async def test_round_robin_shares_load(start_gateway, pair):
    gateway = await start_gateway(open_route([pair[0].url, pair[1].url]))
    async with aiohttp.ClientSession() as client:
        names = [await served_by(client, gateway.url + "/things/1") for _ in range(20)]
    assert collections.Counter(names) == {"a": 10, "b": 10}
    assert names[:4] in (["a", "b", "a", "b"], ["b", "a", "b", "a"])


@pytest.mark.gen_test(timeout=10)
async def test_least_outstanding_avoids_busy_host(start_gateway, io_loop):
    slow = Downstream("slow", delay=0.6).start()
    fast = Downstream("fast").start()
    try:
        gateway = await start_gateway(open_route([slow.url, fast.url], group='load_balancer = "least_outstanding"'))
        async with aiohttp.ClientSession() as client:
            background = [asyncio.ensure_future(served_by(client, gateway.url + "/things/bg")) for _ in range(4)]
            await asyncio.sleep(0.3)
            # Two requests are still outstanding on the slow host, none on the fast one.
            names = [await served_by(client, gateway.url + "/things/1") for _ in range(6)]
            assert names == ["fast"] * 6
            assert sorted(await asyncio.gather(*background)) == ["fast", "fast", "slow", "slow"]
    finally:
        await slow.stop()
        await fast.stop()


@pytest.mark.gen_test(timeout=30)
async def test_host_stopped_mid_run_no_failed_request(start_gateway, pair):
    first, second = pair
    gateway = await start_gateway(open_route([first.url, second.url], extra="retries = 1"),
                                  GATEWAY__PROXY__PROBE_INTERVAL="0.2")
    statuses: list[int] = []
    async with aiohttp.ClientSession() as client:

        async def worker(count: int) -> None:
            for _ in range(count):
                async with client.get(gateway.url + "/things/1") as response:
                    await response.read()
                    statuses.append(response.status)

        workers = [asyncio.ensure_future(worker(60)) for _ in range(5)]
        while len(statuses) < 100:
            await asyncio.sleep(0.005)
        await second.stop()
        await asyncio.gather(*workers)
        assert len(statuses) == 300
        assert collections.Counter(statuses) == {200: 300}
        host_b = gateway.gateway.balancers["svc"].hosts[1]
        assert host_b.healthy is False

        # Host b comes back: a probe marks it up and it gets its share again.
        before = len(second.seen)
        second.start()
        for _ in range(50):
            if host_b.healthy:
                break
            await asyncio.sleep(0.1)
        assert host_b.healthy is True
        names = [await served_by(client, gateway.url + "/things/2") for _ in range(10)]
        assert collections.Counter(names) == {"a": 5, "b": 5}
        assert len(second.seen) == before + 5


@pytest.mark.gen_test(timeout=10)
async def test_refused_connection_retried_for_post(start_gateway, pair):
    first, second = pair
    gateway = await start_gateway(open_route([first.url, second.url], extra="retries = 1",
                                             group="unhealthy_after = 100"))
    await first.stop()
    async with aiohttp.ClientSession() as client:
        for _ in range(4):
            async with client.post(gateway.url + "/things/new", data=b'{"title": "x"}') as response:
                body = await response.json()
                assert response.status == 200
                assert body["server"] == "b"
                assert body["body_size"] == 14


@pytest.mark.gen_test(timeout=10)
async def test_no_retry_when_retries_zero(start_gateway, pair):
    first, second = pair
    gateway = await start_gateway(open_route([first.url, second.url], extra="retries = 0",
                                             group="unhealthy_after = 100"))
    await first.stop()
    async with aiohttp.ClientSession() as client:
        statuses = []
        for _ in range(4):
            async with client.get(gateway.url + "/things/1") as response:
                await response.read()
                statuses.append(response.status)
    assert sorted(statuses) == [200, 200, 502, 502]
