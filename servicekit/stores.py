"""Clients for Redis and MongoDB with timeouts, and the errors that mean "store down".

Both clients reconnect by themselves: redis-py drops a broken connection from its
pool and opens a new one on the next command, and PyMongo's topology monitor finds
a server again once it responds. A request that hits a store while it is down fails
within the configured timeouts with an error from `UNAVAILABLE_ERRORS`, which the
request boundary turns into a 503.

The Redis URL selects the deployment:

* `redis://`, `rediss://` or `unix://`: a single server;
* `redis+sentinel://host:port[,host:port...]/service_name[/db]`: the primary
  that Sentinel names for `service_name`, found again after a failover;
* `redis+cluster://host:port[,host:port...]`: a Redis Cluster, where any listed
  node is enough to discover the rest.

A user name and password in the URL (`redis+cluster://user:secret@host:port`)
apply to every node; a `rediss+sentinel://` or `rediss+cluster://` URL uses TLS.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import pymongo.errors
import redis.asyncio
import redis.exceptions
from pymongo import AsyncMongoClient
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff

from .settings import MongoSettings, RedisSettings

# Errors raised by a store that is down or unreachable, as opposed to a bad command.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    # A cluster that lost a slot's primary, until a replica takes over. (Sentinel's
    # MasterNotFoundError during a failover is a ConnectionError.)
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
    # None of the nodes in a cluster URL accepts a connection.
    redis.exceptions.RedisClusterUnreachableError,
    pymongo.errors.ConnectionFailure,  # includes AutoReconnect and ServerSelectionTimeoutError
    pymongo.errors.ExecutionTimeout,
    pymongo.errors.WTimeoutError,
)


class StoreUnavailable(Exception):
    """A store the request needs did not respond in time.

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
    if isinstance(exc, (redis.exceptions.RedisError, redis.exceptions.RedisClusterException)):
        return "redis"
    return "mongodb"


REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel",
                 "redis+cluster", "rediss+cluster")


@dataclass(frozen=True)
class RedisAddress:
    """A `redis+sentinel://` or `redis+cluster://` URL taken apart."""

    nodes: tuple[tuple[str, int], ...]
    tls: bool
    username: str | None
    password: str | None
    # Sentinel only: the monitored primary's name and the database number.
    service_name: str = ""
    db: int = 0


def parse_redis_url(url: str) -> RedisAddress:
    """Split a Sentinel or Cluster URL; raise ValueError naming what is wrong."""
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":") if credentials else ("", "", "")
    nodes = []
    for item in hosts.split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{item!r} in the Redis URL is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    path = [segment for segment in parts.path.split("/") if segment]
    service_name, db = "", 0
    if parts.scheme.endswith("+sentinel"):
        if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
            raise ValueError("a Sentinel URL needs /service_name or /service_name/db after the hosts")
        service_name, db = path[0], int(path[1]) if len(path) == 2 else 0
    elif path:
        raise ValueError("a Cluster URL takes no path: a cluster has database 0 only")
    return RedisAddress(nodes=tuple(nodes), tls=parts.scheme.startswith("rediss"),
                        username=unquote(username) or None, password=unquote(password) or None,
                        service_name=service_name, db=db)


def _redis_retry(retries: int) -> Retry:
    """Retry a command on a dropped connection or a failover, with backoff of 0.05 s doubling up to 0.5 s."""
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=retries)


# One retry covers a server that closed its connections (a restart). A cluster or
# Sentinel gets more, to ride out the moment a failover moves a primary. A request
# that still fails after them gets 503.
SINGLE_SERVER_RETRIES = 1
FAILOVER_RETRIES = 3


def create_redis(settings: RedisSettings) -> redis.asyncio.Redis | RedisCluster:
    """Create a client for the deployment that `settings.url` selects; nothing connects yet.

    Connection loss, a cluster slot moving and a Sentinel failover are retried with
    a short exponential backoff. An outage longer than the retries raises an error
    from `UNAVAILABLE_ERRORS`, which the request boundary turns into 503.
    """
    scheme = urlsplit(settings.url).scheme
    timeouts = {
        "socket_connect_timeout": settings.connect_timeout,
        "socket_timeout": settings.command_timeout,
        "decode_responses": False,
    }
    if scheme.endswith("+cluster"):
        address = parse_redis_url(settings.url)
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in address.nodes],
            username=address.username, password=address.password, ssl=address.tls,
            retry=_redis_retry(FAILOVER_RETRIES),
            **timeouts,
        )
    if scheme.endswith("+sentinel"):
        address = parse_redis_url(settings.url)
        sentinel = Sentinel(list(address.nodes), sentinel_kwargs={**timeouts, "ssl": address.tls}, **timeouts)
        return sentinel.master_for(
            address.service_name, db=address.db, username=address.username, password=address.password,
            ssl=address.tls, retry=_redis_retry(FAILOVER_RETRIES),
            retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        )
    return redis.asyncio.Redis.from_url(
        settings.url,
        retry=_redis_retry(SINGLE_SERVER_RETRIES),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        health_check_interval=30,
        **timeouts,
    )


def create_mongo(settings: MongoSettings, app_name: str) -> AsyncMongoClient:
    """Create a PyMongo asyncio client that fails fast when no server responds.

    Every write waits for a majority of the replica set (`w="majority"`), because
    the services write only what must survive a failover: users, consents,
    signing keys and movies. A majority that does not confirm within
    `operation_timeout` raises `WTimeoutError`, which gives 503. Every read goes
    to the primary, whatever the connection string says, so a read that follows
    a write sees it. A standalone server treats "majority" as itself.
    """
    timeout_ms = int(settings.server_selection_timeout * 1000)
    operation_ms = int(settings.operation_timeout * 1000)
    return AsyncMongoClient(
        settings.url,
        appname=app_name,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=operation_ms,
        w="majority",
        wTimeoutMS=operation_ms,
        readPreference="primary",
        tz_aware=True,
        connect=False,
    )


@dataclass
class Stores:
    """The store clients of one service process; `mongo` is None for Redis-only services."""

    redis: redis.asyncio.Redis | RedisCluster
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
        # A Sentinel client's pool also keeps connections to the sentinels, which
        # closing the client leaves open.
        sentinels = getattr(getattr(self.redis, "connection_pool", None), "sentinel_manager", None)
        if sentinels is not None:
            await sentinels.aclose()
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
