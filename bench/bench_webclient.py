"""Benchmark: what a webclient page costs over the API call behind it.

    .venv/bin/python bench/bench_webclient.py [--seconds 10] [--connections 8]

One run starts a private redis-server, SecantusDB, a test issuer, and movies_srv,
gateway_srv and webclient_srv processes on free loopback ports, stores one movie,
writes one signed-in session into Redis, and measures, one after the other (the
gateway's rate limits raised out of the way):

1. `GET /movies/{id}` on the gateway with the session's access token (the call
   the page makes);
2. `GET /movies/{id}` on the webclient with the session cookie: the session read
   from Redis, the same gateway call, and the rendered HTML page.

It prints each rate and its ratio to the first, each case's latency percentiles
(`latency-us` lines, timed by the load generator's threads, so they include the
wait for the GIL), and before stopping the services, the peak resident memory of
each service process. The load generator is Python
threads with keep-alive connections, on the same machine as the servers, so the
rates are those of this machine shared by client and servers.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis.asyncio  # noqa: E402
from benchlib import latency_line, percentiles_of, print_peak_memory  # noqa: E402
from pymongo import MongoClient  # noqa: E402

from servicekit.embedded import free_port, redis_server, secantus_server  # noqa: E402
from tests.support.processes import ServiceProcess  # noqa: E402
from tests.support.test_issuer import BROWSER_CLIENT, TestIssuer  # noqa: E402
from webclient_srv.sessions import Session, SessionStore  # noqa: E402

DATABASE = "movies_bench_webclient"
SUBJECT = "88421113"


def run_load(port: int, path: str, headers: dict[str, str], seconds: float,
             connections: int) -> tuple[float, dict[str, float]]:
    """GET `path` from `connections` threads for `seconds`.

    Returns the requests per second and the latency percentiles in microseconds.
    """
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures: list[str] = []
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < deadline and not failures:
            sent = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failures.append(f"GET {path} on port {port} returned {response.status}")
                break
            latencies[index].append(time.perf_counter() - sent)
        connection.close()

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"bench_webclient: {failures[0]}")
    samples = [latency for per_thread in latencies for latency in per_thread]
    return len(samples) / (time.monotonic() - started), percentiles_of(samples)


def unlimited_routes(workdir: Path) -> Path:
    """Copy conf/routes.toml with rate limits far above what one run sends."""
    text = (ROOT / "conf" / "routes.toml").read_text()
    text = re.sub(r"(per_client|per_user|per_address) = \d+", r"\1 = 100000000", text)
    path = workdir / "routes.toml"
    path.write_text(text)
    return path


def write_session(redis_url: str, issuer: TestIssuer) -> tuple[str, str]:
    """Store a signed-in session valid for an hour; return its cookie value and access token."""
    now = int(time.time())
    id_claims = {"iss": issuer.url, "sub": SUBJECT, "aud": BROWSER_CLIENT, "iat": now, "exp": now + 3600,
                 "name": "Bob Smith", "role": ["admin"]}
    access_token = issuer.sign(issuer.user_claims(SUBJECT, roles=["admin"], lifetime=3600))
    session = Session(sub=SUBJECT, id_token=issuer.sign(id_claims, header={"typ": "JWT"}), id_claims=id_claims,
                      access_token=access_token, access_token_expires_at=now + 3600, refresh_token=None)

    async def create() -> str:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            return await SessionStore(client, "web:", 3600).create(session)
        finally:
            await client.aclose()

    return asyncio.run(create()), access_token


def measure(arguments: argparse.Namespace, workdir: Path) -> None:
    redis_proc = redis_server(free_port(), workdir / "redis", persistent=False)
    mongo = secantus_server(free_port(), workdir / "secantusdb")
    issuer = TestIssuer()
    started: list[ServiceProcess] = []
    try:
        redis_proc.start()
        mongo.start(timeout=60)
        issuer.start()
        base = {"REDIS_URL": redis_proc.url, "MONGO_URL": mongo.url, "ISSUER": issuer.url, "LOG_LEVEL": "warning"}
        movies = ServiceProcess("movies_srv", {**base, "MOVIES__MONGO__DATABASE": DATABASE},
                                workdir / "movies.log").start()
        started.append(movies)
        gateway = ServiceProcess("gateway_srv", {**base, "GATEWAY_MOVIES_URL": movies.url,
                                                 "GATEWAY__ROUTES__FILE": str(unlimited_routes(workdir))},
                                 workdir / "gateway.log").start()
        started.append(gateway)
        webclient = ServiceProcess("webclient_srv", {**base, "WEBCLIENT__GATEWAY__URL": gateway.url},
                                   workdir / "webclient.log").start()
        started.append(webclient)

        client = MongoClient(mongo.url)
        movie_id = client[DATABASE]["movies"].insert_one({
            "title": "The Matrix", "genre": "Science Fiction", "rating": 8.7, "releaseDate": "1999-03-31",
            "imageUrl": None, "owner": SUBJECT, "version": 1}).inserted_id
        client.close()
        cookie, access_token = write_session(redis_proc.url, issuer)

        path = f"/movies/{movie_id}"
        cases = [
            ("gateway API call with the access token", gateway.port, {"Authorization": f"Bearer {access_token}"}),
            ("webclient page with the session cookie", webclient.port, {"Cookie": f"webclient_session={cookie}"}),
        ]
        print(f"load generator: Python threads with keep-alive connections, {arguments.connections} "
              f"connections, {arguments.seconds} s per case after a {arguments.warmup} s warm-up; "
              f"{os.cpu_count()} CPU(s) shared by client and servers")
        baseline = None
        distributions = {}
        for label, port, headers in cases:
            run_load(port, path, headers, arguments.warmup, arguments.connections)
            rate, distributions[label] = run_load(port, path, headers, arguments.seconds, arguments.connections)
            baseline = baseline or rate
            print(f"GET /movies/{{id}} {label}: {rate:,.0f} requests/s, ratio {rate / baseline:.2f}")
        for label, distribution in distributions.items():
            print(latency_line(label, distribution))
    finally:
        for service in started:
            if service.process is not None and service.process.poll() is None:
                print_peak_memory(service.package, service.process.pid)
        for service in reversed(started):
            service.stop()
        issuer.stop()
        mongo.stop()
        redis_proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Requests per second of a webclient page and its API call.")
    parser.add_argument("--seconds", type=float, default=10, help="seconds measured per case (default: 10)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per case (default: 2)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (default: 8)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_webclient_") as workdir:
        measure(arguments, Path(workdir))


if __name__ == "__main__":
    main()
