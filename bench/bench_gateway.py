#!/usr/bin/env python3
"""Benchmark an authenticated `GET /movies/{id}` through the gateway, side by side.

Three targets serve the same movie from the same movies_srv process, measured in
one run with the same wrk settings:

* direct: movies_srv's `/api/movies/{id}`;
* nginx: Debian's nginx-light as a plain reverse proxy (one worker, upstream
  keep-alive, no token checks) in front of movies_srv;
* gateway: gateway_srv's `/movies/{id}`, with token validation, rate limits
  counted in Redis, the circuit breaker and pooled keep-alive connections;
* gateway xN: the same with `--workers` gateway processes (default 2) in front
  of the same single movies_srv process, compared with the one-process gateway.

Everything runs on this machine: a private redis-server and SecantusDB, a real
identity_srv for the client_credentials token, and wrk as the load generator,
which competes with the servers for CPU. Compare the ratios, not the absolute
numbers, and only between runs on the same hardware.

    .venv/bin/python bench/bench_gateway.py [--seconds 10] [--connections 20] [--workers 2]

Needs `wrk` and `nginx` on the PATH (apt-get install -y wrk nginx-light).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from servicekit.embedded import free_port, redis_server, secantus_server
from tests.support.identity import client_credentials_token, post_form
from tests.support.processes import ServiceProcess, get_status, wait_for

MOVIE = {"title": "The Matrix", "genre": "Science Fiction", "rating": 8.7, "releaseDate": "1999-03-31"}
# Rate limits of the demo routes, raised so that the benchmark measures the
# counting in Redis without being throttled.
UNLIMITED = 1_000_000_000

NGINX_CONF = """
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    upstream movies {{
        server 127.0.0.1:{movies_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://movies;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


def parse_duration_ms(text: str) -> float:
    """Convert a wrk duration such as `850.00us`, `1.20ms` or `1.01s` to milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk duration {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def run_wrk(url: str, token: str, seconds: int, connections: int, threads: int) -> dict[str, float]:
    """Run wrk against `url` and return requests per second, p50 and p99 in ms, and errors."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
               "-H", f"Authorization: Bearer {token}", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = parse_duration_ms(re.search(r"\s50%\s+(\S+)", output).group(1))
    p99 = parse_duration_ms(re.search(r"\s99%\s+(\S+)", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: (.+)", output)
    return {"rps": rps, "p50": p50, "p99": p99, "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else "none"}


def bench_routes_file(directory: Path) -> Path:
    text = (ROOT / "conf" / "routes.toml").read_text()
    text = re.sub(r"(per_client|per_address) = \d+", rf"\1 = {UNLIMITED}", text)
    path = directory / "routes.toml"
    path.write_text(text)
    return path


def start_nginx(directory: Path, movies_port: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = directory / "nginx.conf"
    config.write_text(NGINX_CONF.format(prefix=directory, movies_port=movies_port, port=port))
    process = subprocess.Popen(["nginx", "-c", str(config), "-p", str(directory), "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_for(lambda: responds(f"http://127.0.0.1:{port}/healthz"), 10, message="nginx")
    return process, port


def responds(url: str) -> bool:
    try:
        return get_status(url, timeout=1)[0] == 200
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds per target (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured seconds per target first (default 2)")
    parser.add_argument("--connections", type=int, default=20, help="concurrent wrk connections (default 20)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--workers", type=int, default=2,
                        help="gateway processes of the last target, compared with one (default 2)")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: apt-get install -y wrk nginx-light", file=sys.stderr)
            return 2

    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as temp:
        directory = Path(temp)
        redis = redis_server(free_port(), directory / "redis", persistent=False)
        mongo = secantus_server(free_port(), directory / "mongo")
        started: list = []
        nginx = None
        try:
            redis.start()
            mongo.start(timeout=60)
            stores = {"REDIS_URL": redis.url, "MONGO_URL": mongo.url, "LOG_LEVEL": "warning"}
            identity = ServiceProcess("identity_srv", dict(stores), directory / "identity.log")
            identity.env["ISSUER"] = identity.url
            started.append(identity.start())
            movies = ServiceProcess("movies_srv", {**stores, "ISSUER": identity.url,
                                                   "MOVIES__ACCESS__MACHINE_TOKENS_MAY_WRITE": "true"},
                                    directory / "movies.log")
            started.append(movies.start())
            gateway = ServiceProcess("gateway_srv", {**stores, "ISSUER": identity.url,
                                                     "GATEWAY_MOVIES_URL": movies.url,
                                                     "GATEWAY__ROUTES__FILE": str(bench_routes_file(directory))},
                                     directory / "gateway.log")
            started.append(gateway.start())
            several = {**gateway.env, "GATEWAY__HTTP__WORKERS": str(args.workers)}
            gateway_workers = ServiceProcess("gateway_srv", several, directory / "gateway-workers.log")
            started.append(gateway_workers.start())
            nginx, nginx_port = start_nginx(directory, movies.port)

            token = client_credentials_token(identity.url)
            status, _, body = post_form(f"{movies.url}/api/movies", json.dumps(MOVIE).encode(),
                                        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            if status != 201:
                print(f"creating the benchmark movie failed with {status}: {body!r}", file=sys.stderr)
                return 1
            movie_id = json.loads(body)["id"]

            targets = {
                "direct": f"{movies.url}/api/movies/{movie_id}",
                "nginx": f"http://127.0.0.1:{nginx_port}/api/movies/{movie_id}",
                "gateway": f"{gateway.url}/movies/{movie_id}",
                f"gateway x{args.workers}": f"{gateway_workers.url}/movies/{movie_id}",
            }
            results = {}
            for name, url in targets.items():
                run_wrk(url, token, args.warmup, args.connections, args.threads)
                results[name] = run_wrk(url, token, args.seconds, args.connections, args.threads)
            report(results, args)
        finally:
            if nginx is not None:
                nginx.terminate()
                nginx.wait(10)
            for service in reversed(started):
                service.stop()
            mongo.stop()
            redis.stop()
    return 0


def report(results: dict[str, dict], args: argparse.Namespace) -> None:
    cpus = os.cpu_count()
    print(f"GET /movies/{{id}} with a bearer token; wrk -t{args.threads} -c{args.connections} "
          f"-d{args.seconds}s; {cpus} CPUs shared by wrk and the servers")
    print(f"{'target':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}  socket errors")
    for name, result in results.items():
        print(f"{name:<10} {result['rps']:>9.0f} {result['p50']:>8.2f} {result['p99']:>8.2f} "
              f"{result['non_2xx']:>8}  {result['socket_errors']}")
    direct, nginx, gateway = results["direct"], results["nginx"], results["gateway"]
    print("ratios (gateway / other; req/s above 1 is faster, latency above 1 is slower):")
    for label, other in (("direct", direct), ("nginx", nginx)):
        print(f"  gateway/{label:<6}  req/s {gateway['rps'] / other['rps']:.2f}  "
              f"p50 {gateway['p50'] / other['p50']:.2f}  p99 {gateway['p99'] / other['p99']:.2f}")
    print(f"  nginx/direct    req/s {nginx['rps'] / direct['rps']:.2f}  "
          f"p50 {nginx['p50'] / direct['p50']:.2f}  p99 {nginx['p99'] / direct['p99']:.2f}")
    several = results[f"gateway x{args.workers}"]
    print(f"  gateway {args.workers} workers / 1 worker  req/s {several['rps'] / gateway['rps']:.2f}  "
          f"p50 {several['p50'] / gateway['p50']:.2f}  p99 {several['p99'] / gateway['p99']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
