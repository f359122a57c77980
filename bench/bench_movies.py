"""Benchmark: reads per second of `GET /api/movies/{id}` with and without the token check.

    .venv/bin/python bench/bench_movies.py [--seconds 10] [--connections 16]

One run starts a private redis-server, SecantusDB, a test issuer and one
movies_srv process on free loopback ports, stores one movie, and measures the
same read three ways, one after the other:

1. without the token check: a handler mounted only by this benchmark, which
   reads and writes the movie exactly as `GET /api/movies/{id}` does;
2. with the token check as configured by default (a validated-token cache, so a
   repeated token costs a SHA-256, a dictionary lookup and the deny-list EXISTS
   in Redis);
3. with the token check and that cache off, so every request verifies the
   RS256 signature and the claims.

It prints each rate and its ratio to the first, each case's latency percentiles
(`latency-us` lines), and before stopping movies_srv, the peak resident memory
of its process. The load generator is wrk when it
is on the PATH (one thread), else a Python one (threads with keep-alive
connections), and the output names it. Both run on the same machine as the
server, so the rates are those of this machine shared by client and server.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import (  # noqa: E402
    latency_line,
    parse_wrk_latency,
    percentiles_of,
    print_peak_memory,
    write_wrk_script,
)
from pymongo import MongoClient  # noqa: E402

from servicekit.embedded import free_port, redis_server, secantus_server  # noqa: E402
from tests.support.processes import ServiceProcess, wait_for  # noqa: E402
from tests.support.test_issuer import TestIssuer  # noqa: E402

DATABASE = "movies_bench"
UNPROTECTED_PATH = "/bench/unprotected/movies/{id}"
UNCACHED_PATH = "/bench/uncached/movies/{id}"


# -- server side: movies_srv plus the benchmark's routes ---------------------------

def serve() -> None:
    """Run movies_srv with two extra routes; started as a child process by `main`."""
    import dataclasses

    from movies_srv.app import build
    from movies_srv.handlers import MovieHandler
    from movies_srv.settings import load_settings
    from servicekit.resource import AccessTokenValidator
    from servicekit.service import run_service

    class UnprotectedMovieHandler(MovieHandler):
        async def get(self, movie_id: str) -> None:
            self.write_movie(await self.find_movie(movie_id))

    async def build_with_benchmark_routes(settings, stores):
        service = await build(settings, stores)
        router = service.app.wildcard_router
        movie_rule = next(rule for rule in router.rules if rule.target is MovieHandler)
        uncached_settings = dataclasses.replace(settings.tokens, token_cache_size=0)
        uncached = {**movie_rule.target_kwargs,
                    "validator": AccessTokenValidator(uncached_settings, stores.redis)}
        router.add_rules([
            (r"/bench/unprotected/movies/([^/]+)", UnprotectedMovieHandler, movie_rule.target_kwargs),
            (r"/bench/uncached/movies/([^/]+)", MovieHandler, uncached),
        ])
        return service

    # The script's own `--serve` flag is not a service option; one worker keeps the
    # two cases comparable.
    run_service(load_settings, build_with_benchmark_routes, argv=["--workers", "1"])


class BenchmarkService(ServiceProcess):
    """movies_srv started through this script's `--serve` mode."""

    def start(self, wait: bool = True) -> "BenchmarkService":
        env = {**os.environ, **self.env, "MOVIES_PORT": str(self.port), "MOVIES__HTTP__HOST": "127.0.0.1"}
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, __file__, "--serve"], env=env, cwd=ROOT,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        wait_for(self._healthy, 30, message="movies_srv /healthz")
        return self


# -- load generators ---------------------------------------------------------------

def run_wrk(url: str, token: str | None, seconds: int, connections: int,
            script: Path) -> tuple[float, dict[str, float]]:
    """Return the requests per second and the latency percentiles (microseconds) of one wrk run."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if re.search(r"Non-2xx or 3xx responses: \d+", output):
        raise SystemExit(f"bench_movies: {url} returned errors:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), parse_wrk_latency(output)


def run_python(url: str, token: str | None, seconds: int, connections: int,
               script: Path) -> tuple[float, dict[str, float]]:
    """Return the requests per second and the latency percentiles (microseconds) of Python threads.

    `script` is unused; it keeps the signature of `run_wrk`.
    """
    host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()
    path = url.split(port, 1)[1]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[list[float]] = [[] for _ in range(connections)]
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        while time.monotonic() < deadline:
            sent = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"bench_movies: {url} returned {response.status}")
            latencies[index].append(time.perf_counter() - sent)
        connection.close()

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    samples = [latency for per_thread in latencies for latency in per_thread]
    return len(samples) / (time.monotonic() - started), percentiles_of(samples)


# -- orchestration -------------------------------------------------------------------

def measure(arguments: argparse.Namespace, workdir: Path) -> None:
    use_wrk = shutil.which("wrk") is not None and not arguments.python_client
    load = run_wrk if use_wrk else run_python
    generator = ("wrk (1 thread)" if use_wrk else "Python threads with keep-alive connections")

    redis = redis_server(free_port(), workdir / "redis", persistent=False)
    mongo = secantus_server(free_port(), workdir / "secantusdb")
    issuer = TestIssuer()
    service = None
    try:
        redis.start()
        mongo.start(timeout=60)
        issuer.start()
        service = BenchmarkService("movies_srv", {
            "REDIS_URL": redis.url, "MONGO_URL": mongo.url, "ISSUER": issuer.url,
            "LOG_LEVEL": "warning", "MOVIES__MONGO__DATABASE": DATABASE}, workdir / "movies_srv.log").start()

        client = MongoClient(mongo.url)
        movie_id = client[DATABASE]["movies"].insert_one({
            "title": "The Matrix", "genre": "Science Fiction", "rating": 8.7, "releaseDate": "1999-03-31",
            "imageUrl": None, "owner": "818727", "version": 1}).inserted_id
        client.close()
        # Long enough to outlast the whole run, so the token stays valid.
        token = issuer.sign(issuer.user_claims("818727", lifetime=3600))

        cases = [
            ("without token check", UNPROTECTED_PATH, None),
            ("with token check (validated-token cache on, the default)", "/api/movies/{id}", token),
            ("with token check, validated-token cache off", UNCACHED_PATH, token),
        ]
        print(f"load generator: {generator}, {arguments.connections} connections, "
              f"{arguments.seconds} s per case after a {arguments.warmup} s warm-up; "
              f"{os.cpu_count()} CPU(s) shared by client and server")
        script = write_wrk_script(workdir / "latency.lua")
        baseline = None
        distributions = {}
        for label, path, case_token in cases:
            url = service.url + path.format(id=movie_id)
            load(url, case_token, arguments.warmup, arguments.connections, script)
            rate, distributions[label] = load(url, case_token, arguments.seconds, arguments.connections, script)
            baseline = baseline or rate
            print(f"GET /api/movies/{{id}} {label}: {rate:,.0f} requests/s, ratio {rate / baseline:.2f}")
        for label, distribution in distributions.items():
            print(latency_line(label, distribution))
    finally:
        if service is not None:
            if service.process is not None and service.process.poll() is None:
                print_peak_memory("movies_srv", service.process.pid)
            service.stop()
        issuer.stop()
        mongo.stop()
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Reads per second with and without the token check.")
    parser.add_argument("--seconds", type=int, default=10, help="seconds measured per case (default: 10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per case (default: 2)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default: 16)")
    parser.add_argument("--python-client", action="store_true", help="use the Python load generator even if wrk is installed")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        serve()
        return
    with tempfile.TemporaryDirectory(prefix="bench_movies_") as workdir:
        measure(arguments, Path(workdir))


if __name__ == "__main__":
    main()
