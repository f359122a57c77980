"""Benchmark three known performance traps beside the project's own way, in one run.

    .venv/bin/python bench/bench_traps.py [--seconds 10]

Each pair runs in this process, one after the other, on one thread:

1. RS256 signatures per second: identity_srv's `issue_access_token` with a key
   object parsed once by `decrypt_private_key` (what its key ring keeps), beside
   PyJWT given the PEM text, which parses the key again for every signature;
2. client secret checks per second: identity_srv's `verify_secret` (SHA-256 and a
   constant-time comparison), beside `bcrypt.checkpw` at cost 12;
3. Redis round trips per second from redis.asyncio against a private
   redis-server, for a GET of one value and an MGET of 20 values: the hiredis
   reply parser beside the pure-Python RESP2 parser. The parser's share of a
   round trip grows with the reply, so the small GET shows little difference.
   The two parsers alternate in four slices each, so a burst of other work on a shared
   machine hits both alike. It also prints whether hiredis is installed and
   which parser the services' client (servicekit.stores.create_redis) uses.

Each pair prints a `trap <name>: ours=<rate> trap=<rate>` line for suite.py.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bcrypt
import jwt
import redis.asyncio
import redis.utils
from cryptography.hazmat.primitives import serialization
from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser

from identity_srv.keyring import SigningKey
from identity_srv.keystore import (
    StoredKey,
    decrypt_private_key,
    generate_private_key,
    public_jwk_of,
)
from identity_srv.secrets import hash_secret, verify_secret
from identity_srv.tokens import ACCESS_TOKEN_TYPE, issue_access_token
from servicekit.embedded import free_port, redis_server
from servicekit.settings import RedisSettings
from servicekit.stores import create_redis

ISSUER = "http://127.0.0.1:5005"
PASSPHRASE = "bench-passphrase"
BCRYPT_COST = 12
# About the size of a cached session or token document.
REDIS_VALUE = b"x" * 200
MGET_KEYS = 20


def rate_of(operation, seconds: float) -> float:
    """Call `operation` repeatedly for at least `seconds` and at least twice; return calls per second."""
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while count < 2 or time.perf_counter() < deadline:
        operation()
        count += 1
    return count / (time.perf_counter() - started)


class LoadedKeyRing:
    """A key ring with one key, parsed once, as identity_srv's KeyRing keeps it after a load."""

    def __init__(self, key: SigningKey):
        self.key = key

    def signing_key(self, now: float | None = None) -> SigningKey:
        return self.key


def signing_rates(seconds: float) -> tuple[float, float]:
    """Return RS256 signatures per second with the key parsed once and with the PEM parsed per signature."""
    private_key = generate_private_key("RS256")
    kid = public_jwk_of(private_key, "RS256")["kid"]
    encrypted = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.BestAvailableEncryption(PASSPHRASE.encode()))
    stored = StoredKey(kid=kid, generation=1, algorithm="RS256", state="active", private_pem=encrypted,
                       public_jwk={}, created_at=0.0, activates_at=0.0, removes_at=None)
    keyring = LoadedKeyRing(SigningKey(kid, "RS256", decrypt_private_key(stored, PASSPHRASE), 0.0))
    ours = rate_of(lambda: issue_access_token(keyring, ISSUER, "bench", "movieClient", ("movieAPI",),
                                              ("movieAPI",), 3600), seconds)

    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    claims = issue_access_token(keyring, ISSUER, "bench", "movieClient", ("movieAPI",), ("movieAPI",), 3600).claims
    trap = rate_of(lambda: jwt.encode(claims, pem, algorithm="RS256",
                                      headers={"kid": kid, "typ": ACCESS_TOKEN_TYPE}), seconds)
    return ours, trap


def secret_rates(seconds: float) -> tuple[float, float]:
    """Return client secret checks per second with SHA-256 (identity_srv) and with bcrypt."""
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    stored = hash_secret(secret)
    ours = rate_of(lambda: verify_secret(secret, stored), seconds)
    hashed = bcrypt.hashpw(secret.encode(), bcrypt.gensalt(BCRYPT_COST))
    trap = rate_of(lambda: bcrypt.checkpw(secret.encode(), hashed), seconds)
    return ours, trap


async def redis_rates(url: str, seconds: float, slices: int = 4) -> tuple[dict[str, tuple[float, float]], str]:
    """Return round trips per second of each Redis case as (hiredis, pure-Python parser).

    Each case gets `seconds`. Also returns the parser class name of a client made
    by servicekit.stores.create_redis, as the services make theirs.
    """
    clients = {parser: redis.asyncio.Redis.from_url(url, parser_class=parser)
               for parser in (_AsyncHiredisParser, _AsyncRESP2Parser)}
    service_client = create_redis(RedisSettings(url=url, key_prefix="", connect_timeout=2.0, command_timeout=2.0))
    keys = [f"bench:value:{index}" for index in range(MGET_KEYS)]
    expected_values = [REDIS_VALUE] * MGET_KEYS
    try:
        await service_client.mset(dict.fromkeys(keys, REDIS_VALUE))
        connection = await service_client.connection_pool.get_connection()
        service_parser = type(connection._parser).__name__
        await service_client.connection_pool.release(connection)

        async def get_one(client: redis.asyncio.Redis) -> None:
            if await client.get(keys[0]) != REDIS_VALUE:
                raise SystemExit(f"bench_traps: Redis returned a different value for {keys[0]}")

        async def get_many(client: redis.asyncio.Redis) -> None:
            if await client.mget(keys) != expected_values:
                raise SystemExit("bench_traps: Redis MGET returned different values")

        cases = {"GET of one 200-byte value": get_one, f"MGET of {MGET_KEYS} 200-byte values": get_many}
        results = {}
        for case, operation in cases.items():
            counts = dict.fromkeys(clients, 0)
            elapsed = dict.fromkeys(clients, 0.0)
            for client in clients.values():
                await operation(client)  # connect before timing
            for _ in range(slices):
                for parser, client in clients.items():
                    started = time.perf_counter()
                    deadline = started + seconds / 2 / slices
                    while time.perf_counter() < deadline:
                        await operation(client)
                        counts[parser] += 1
                    elapsed[parser] += time.perf_counter() - started
            results[case] = (counts[_AsyncHiredisParser] / elapsed[_AsyncHiredisParser],
                             counts[_AsyncRESP2Parser] / elapsed[_AsyncRESP2Parser])
        return results, service_parser
    finally:
        for client in clients.values():
            await client.aclose()
        await service_client.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10,
                        help="seconds per pair and per Redis case, split between its two sides (default 10)")
    args = parser.parse_args()
    half = args.seconds / 2

    ours, trap = signing_rates(half)
    print(f"RS256 signatures/s: key object parsed once {ours:,.0f}, PEM parsed per signature {trap:,.1f}, "
          f"ratio {ours / trap:.0f}")
    print(f"trap RS256 signatures/s: ours={ours:.1f} trap={trap:.1f}")

    ours, trap = secret_rates(half)
    print(f"client secret checks/s: SHA-256 digest {ours:,.0f}, bcrypt cost {BCRYPT_COST} {trap:,.2f}, "
          f"ratio {ours / trap:,.0f}")
    print(f"trap client secret checks/s: ours={ours:.1f} trap={trap:.2f}")

    with tempfile.TemporaryDirectory(prefix="bench_traps_") as workdir:
        server = redis_server(free_port(), Path(workdir) / "redis", persistent=False)
        server.start()
        try:
            results, service_parser = asyncio.run(redis_rates(server.url, args.seconds))
        finally:
            server.stop()
    for case, (ours, trap) in results.items():
        print(f"Redis round trips/s, {case} (redis.asyncio, one connection): hiredis parser {ours:,.0f}, "
              f"pure-Python parser {trap:,.0f}, ratio {ours / trap:.2f}")
        print(f"trap Redis round trips/s, {case}: ours={ours:.1f} trap={trap:.1f}")
    print(f"hiredis available: {redis.utils.HIREDIS_AVAILABLE}; parser of the services' Redis client: "
          f"{service_parser}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
