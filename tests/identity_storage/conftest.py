"""A Redis client on the test server for the storage modules, one event loop per test."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio

PREFIX = "idp:"


@pytest.fixture
def run_with_redis(redis_url):
    """Run `action(client)` in a fresh event loop with a client on the test Redis."""

    def run(action):
        async def main():
            client = redis.asyncio.Redis.from_url(redis_url)
            try:
                return await action(client)
            finally:
                await client.aclose()

        return asyncio.run(main())

    return run
