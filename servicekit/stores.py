"""Clients for Redis and MongoDB with timeouts, and the errors that mean "store down".

Both clients reconnect by themselves: redis-py drops a broken connection from its
pool and opens a new one on the next command, and PyMongo's topology monitor finds
a server again once it answers. A request that hits a store while it is down fails
within the configured timeouts with an error from `UNAVAILABLE_ERRORS`, which the
request boundary turns into a 503.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pymongo.errors
import redis.asyncio
import redis.exceptions
from pymongo import AsyncMongoClient
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from .settings import MongoSettings, RedisSettings

# Errors raised by a store that is down or unreachable, as opposed to a bad command.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    pymongo.errors.ConnectionFailure,  # includes AutoReconnect and ServerSelectionTimeoutError
    pymongo.errors.ExecutionTimeout,
    pymongo.errors.WTimeoutError,
)


class StoreUnavailable(Exception):
    """A store the request needs did not answer in time.

    `store` is the name shown to clients ("redis" or "mongodb"); the cause is kept
    for the log only.
    """

    def __init__(self, store: str):
        super().__init__(f"{store} is unavailable")
        self.store = store


def store_name(exc: BaseException) -> str:
    """Name the store behind an error from `UNAVAILABLE_ERRORS`."""
    if isinstance(exc, StoreUnavailable):
        return exc.store
    if isinstance(exc, redis.exceptions.RedisError):
        return "redis"
    return "mongodb"


def create_redis(settings: RedisSettings) -> redis.asyncio.Redis:
    """Create a Redis client that fails fast when the server is down.

    One retry with a short backoff covers a connection the server closed (a restart);
    anything longer surfaces as `redis.exceptions.ConnectionError` within about
    `connect_timeout` + `command_timeout` seconds.
    """
    return redis.asyncio.Redis.from_url(
        settings.url,
        socket_connect_timeout=settings.connect_timeout,
        socket_timeout=settings.command_timeout,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=1),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        health_check_interval=30,
        decode_responses=False,
    )


def create_mongo(settings: MongoSettings, app_name: str) -> AsyncMongoClient:
    """Create a PyMongo asyncio client that fails fast when no server answers."""
    timeout_ms = int(settings.server_selection_timeout * 1000)
    return AsyncMongoClient(
        settings.url,
        appname=app_name,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=int(settings.operation_timeout * 1000),
        tz_aware=True,
        connect=False,
    )


@dataclass
class Stores:
    """The store clients of one service process; `mongo` is None for Redis-only services."""

    redis: redis.asyncio.Redis
    mongo: AsyncMongoClient | None
    mongo_database: str = ""

    @property
    def db(self):
        """The service's MongoDB database."""
        if self.mongo is None:
            raise RuntimeError("this service has no MongoDB settings")
        return self.mongo[self.mongo_database]

    async def close(self) -> None:
        await self.redis.aclose()
        if self.mongo is not None:
            await self.mongo.close()


async def ping_redis(client: redis.asyncio.Redis, timeout: float) -> None:
    """Raise `StoreUnavailable("redis")` unless Redis answers PING within `timeout`."""
    try:
        await asyncio.wait_for(client.ping(), timeout)
    except (asyncio.TimeoutError, *UNAVAILABLE_ERRORS) as exc:
        raise StoreUnavailable("redis") from exc


async def ping_mongo(client: AsyncMongoClient, timeout: float) -> None:
    """Raise `StoreUnavailable("mongodb")` unless MongoDB answers ping within `timeout`."""
    try:
        await asyncio.wait_for(client.admin.command("ping"), timeout)
    except (asyncio.TimeoutError, *UNAVAILABLE_ERRORS) as exc:
        raise StoreUnavailable("mongodb") from exc
