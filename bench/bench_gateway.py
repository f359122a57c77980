#!/usr/bin/env python3
"""Benchmark an authenticated `GET /movies/{id}` through the gateway, side by side.

Seven targets are measured in one run with the same wrk settings. The first four
serve the same movie from the same movies_srv process:

* direct: movies_srv's `/api/movies/{id}`;
* nginx: Debian's nginx-light as a plain reverse proxy (one worker, upstream
  keep-alive, no token checks) in front of movies_srv;
* gateway: gateway_srv's `/movies/{id}`, with token validation, rate limits
  counted in Redis, the circuit breaker and pooled keep-alive connections;
* gateway xN: the same with `--workers` gateway processes (default 2) in front
  of the same single movies_srv process, compared with the one-process gateway.

The last three serve a fixed movie from an nginx stub instead:

* gateway to stub, gateway xN to stub: the gateway with one and with N workers in
  front of an nginx `location` that returns a fixed JSON movie, and stub direct:
  that stub without the gateway. On two cores the whole stack (wrk, Redis,
  SecantusDB, movies_srv, the gateway) already uses both cores with one gateway
  worker, so only a downstream that costs almost nothing shows how the gateway
  itself scales with workers.

For each measured run the script also prints the latency percentiles (a wrk Lua
`done` hook), the JWKS fetches seen by identity_srv, the new TCP connections
(ActiveOpens) and the Redis reads and commands, for suite.py to divide by the
run's requests, and the CPU seconds each process used. The same counters over a
few seconds without load give their background rate. Before stopping the
services it prints the peak resident memory (VmHWM) of each service process.

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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis as redis_client
from benchlib import (
    children_cpu_seconds,
    cpu_snapshot,
    latency_line,
    parse_wrk_latency,
    parse_wrk_summary,
    print_peak_memory,
    process_labels,
    tcp_active_opens,
    write_wrk_script,
)

from servicekit.embedded import free_port, redis_server, secantus_server
from tests.support.identity import client_credentials_token, post_form
from tests.support.processes import ServiceProcess, get_status, wait_for

MOVIE = {"title": "The Matrix", "genre": "Science Fiction", "rating": 8.7, "releaseDate": "1999-03-31"}
# Rate limits of the demo routes, raised so that the benchmark measures the
# counting in Redis without being throttled.
UNLIMITED = 1_000_000_000
JWKS_PATH = "/.well-known/openid-configuration/jwks"
# Seconds without load in which the counters' background rate is measured.
IDLE_SECONDS = 3

# The stub's fixed body: a movie document of about the size movies_srv returns.
STUB_BODY = json.dumps({**MOVIE, "id": "000000000000000000000000", "imageUrl": None, "owner": "bench",
                        "version": 1}, separators=(",", ":"))

# One nginx process serves two ports: a reverse proxy in front of movies_srv (the
# reference for measurement 2), and a stub that returns a fixed JSON movie (the
# downstream of the gateway targets that isolate the gateway's own scaling).
NGINX_CONF = """
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    # nginx closes a keep-alive connection after 1000 requests by default, on
    # both sides; Tornado and the gateway's pool keep theirs open.
    keepalive_requests 1000000;
    upstream movies {{
        server 127.0.0.1:{movies_port};
        keepalive 64;
        keepalive_requests 1000000;
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
    server {{
        listen 127.0.0.1:{stub_port};
        default_type application/json;
        location = /healthz {{ return 200 '{{"status":"ok"}}'; }}
        location / {{ return 200 '{stub_body}'; }}
    }}
}}
"""


def run_wrk(url: str, token: str, seconds: int, connections: int, threads: int, script: Path) -> dict:
    """Run wrk against `url`; return req/s, p50 and p99 in ms, the latency percentiles and the errors."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(script),
               "-H", f"Authorization: Bearer {token}", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = parse_wrk_latency(output)
    summary = parse_wrk_summary(output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: (.+)", output)
    return {"rps": rps, "p50": latency["50"] / 1000, "p99": latency["99"] / 1000, "latency": latency,
            "requests": summary["requests"], "duration_us": summary["duration_us"], "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else "none"}


class RunCounters:
    """Counters read before and after a measured run, to divide by the run's requests.

    * JWKS fetches: access lines for the JWKS path in identity_srv's log
      (identity_srv runs with LOG_LEVEL=info, so every request gets one);
    * new TCP connections: ActiveOpens of /proc/net/snmp, which counts every
      connect() in this network namespace, wrk's own connections included;
    * Redis round trips: `total_reads_processed` of the private Redis (`INFO stats`),
      one per read of a client's socket, so a pipeline of commands counts once.
    """

    def __init__(self, identity_log: Path, redis_url: str):
        self.identity_log = identity_log
        self.redis = redis_client.Redis.from_url(redis_url)

    def jwks_fetches(self) -> int:
        return self.identity_log.read_text(errors="replace").count(f"GET {JWKS_PATH} ")

    def read(self) -> dict[str, int]:
        stats = self.redis.info("stats")
        return {"jwks_fetches": self.jwks_fetches(), "tcp_active_opens": tcp_active_opens(),
                "redis_reads": stats["total_reads_processed"],
                "redis_commands": stats["total_commands_processed"]}

    def delta(self, before: dict[str, int]) -> dict[str, int]:
        after = self.read()
        delta = {key: after[key] - before[key] for key in before}
        # The INFO that read `after` is one read and one command of its own.
        delta["redis_reads"] -= 1
        delta["redis_commands"] -= 1
        return delta

    def close(self) -> None:
        self.redis.close()


def bench_routes_file(directory: Path) -> Path:
    text = (ROOT / "conf" / "routes.toml").read_text()
    text = re.sub(r"(per_client|per_user|per_address) = \d+", rf"\1 = {UNLIMITED}", text)
    path = directory / "routes.toml"
    path.write_text(text)
    return path


def start_nginx(directory: Path, movies_port: int) -> tuple[subprocess.Popen, int, int]:
    """Start nginx; return the process, the reverse proxy's port and the stub's port."""
    port, stub_port = free_port(), free_port()
    config = directory / "nginx.conf"
    config.write_text(NGINX_CONF.format(prefix=directory, movies_port=movies_port, port=port,
                                        stub_port=stub_port, stub_body=STUB_BODY))
    process = subprocess.Popen(["nginx", "-c", str(config), "-p", str(directory), "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_for(lambda: responds(f"http://127.0.0.1:{port}/healthz"), 10, message="nginx")
    wait_for(lambda: responds(f"http://127.0.0.1:{stub_port}/healthz"), 10, message="the nginx stub")
    return process, port, stub_port


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
    parser.add_argument("--rounds", type=int, default=1,
                        help="times to measure every target, in turn; each target reports its median run "
                             "(default 1)")
    parser.add_argument("--workers", type=int, default=2,
                        help="gateway processes of the several-worker targets, compared with one (default 2)")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: apt-get install -y wrk nginx-light", file=sys.stderr)
            return 2

    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as temp:
        directory = Path(temp)
        script = write_wrk_script(directory / "latency.lua")
        redis = redis_server(free_port(), directory / "redis", persistent=False)
        mongo = secantus_server(free_port(), directory / "mongo")
        started: list[ServiceProcess] = []
        nginx = None
        counters = None
        try:
            redis.start()
            mongo.start(timeout=60)
            stores = {"REDIS_URL": redis.url, "MONGO_URL": mongo.url, "LOG_LEVEL": "warning"}
            # At info, identity_srv logs an access line per request, which counts the JWKS fetches.
            identity = ServiceProcess("identity_srv", {**stores, "LOG_LEVEL": "info"}, directory / "identity.log")
            identity.env["ISSUER"] = identity.url
            started.append(identity.start())
            movies = ServiceProcess("movies_srv", {**stores, "ISSUER": identity.url,
                                                   "MOVIES__ACCESS__MACHINE_TOKENS_MAY_WRITE": "true"},
                                    directory / "movies.log")
            started.append(movies.start())
            nginx, nginx_port, stub_port = start_nginx(directory, movies.port)
            stub_url = f"http://127.0.0.1:{stub_port}"
            gateway_env = {**stores, "ISSUER": identity.url, "GATEWAY__ROUTES__FILE": str(bench_routes_file(directory))}
            several = str(args.workers)
            gateways = {
                "gateway": {"GATEWAY_MOVIES_URL": movies.url},
                f"gateway x{several}": {"GATEWAY_MOVIES_URL": movies.url, "GATEWAY__HTTP__WORKERS": several},
                "gateway to stub": {"GATEWAY_MOVIES_URL": stub_url},
                f"gateway x{several} to stub": {"GATEWAY_MOVIES_URL": stub_url, "GATEWAY__HTTP__WORKERS": several},
            }
            gateway_processes = {}
            for index, (name, env) in enumerate(gateways.items()):
                process = ServiceProcess("gateway_srv", {**gateway_env, **env}, directory / f"gateway-{index}.log")
                started.append(process.start())
                gateway_processes[name] = process

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
                **{name: f"{process.url}/movies/{movie_id}" for name, process in gateway_processes.items()},
                "stub direct": f"{stub_url}/api/movies/{movie_id}",
            }
            named_pids = {"redis-server": redis.process.pid, "secantusdb": mongo.process.pid,
                          "identity_srv": identity.process.pid, "movies_srv": movies.process.pid,
                          "nginx": nginx.pid,
                          **{f"gateway_srv ({name})": process.process.pid
                             for name, process in gateway_processes.items()}}
            counters = RunCounters(identity.log_path, redis.url)
            # The counters also move without load (background tasks of the services,
            # other programs' connections), so measure that rate for suite.py to subtract.
            idle_before = counters.read()
            idle_started = time.monotonic()
            time.sleep(IDLE_SECONDS)
            idle = counters.delta(idle_before)
            idle["duration_us"] = round((time.monotonic() - idle_started) * 1e6)
            rounds: dict[str, list[dict]] = {name: [] for name in targets}
            for _ in range(args.rounds):
                for name, url in targets.items():
                    run_wrk(url, token, args.warmup, args.connections, args.threads, script)
                    labels = process_labels(named_pids)
                    cpu_before = cpu_snapshot(labels)
                    wrk_before = children_cpu_seconds()
                    counts_before = counters.read()
                    result = run_wrk(url, token, args.seconds, args.connections, args.threads, script)
                    result["counts"] = counters.delta(counts_before)
                    cpu_after = cpu_snapshot(labels)
                    cpu = {label: cpu_after[label] - cpu_before[label] for label in cpu_after if label in cpu_before}
                    result["cpu"] = {"wrk": children_cpu_seconds() - wrk_before, **cpu}
                    rounds[name].append(result)
            report(median_runs(rounds), idle, args)
            print_rounds(rounds)
        finally:
            if counters is not None:
                counters.close()
            for service in started:
                if service.process is not None and service.process.poll() is None:
                    print_peak_memory(service.package, service.process.pid)
            if nginx is not None:
                nginx.terminate()
                nginx.wait(10)
            for service in reversed(started):
                service.stop()
            mongo.stop()
            redis.stop()
    return 0


def median_runs(rounds: dict[str, list[dict]]) -> dict[str, dict]:
    """Return each target's run with the median rate, so its latencies and counts come from one run."""
    return {name: sorted(runs, key=lambda run: run["rps"])[(len(runs) - 1) // 2] for name, runs in rounds.items()}


def print_rounds(rounds: dict[str, list[dict]]) -> None:
    for name, runs in rounds.items():
        print(f"rounds {name}: req/s " + " ".join(f"{run['rps']:.0f}" for run in runs))


def report(results: dict[str, dict], idle: dict[str, int], args: argparse.Namespace) -> None:
    cpus = os.cpu_count()
    several = f"gateway x{args.workers}"
    print(f"GET /movies/{{id}} with a bearer token; wrk -t{args.threads} -c{args.connections} "
          f"-d{args.seconds}s; {cpus} CPUs shared by wrk and the servers; median of {args.rounds} round(s)")
    print(f"{'target':<20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}  socket errors")
    for name, result in results.items():
        print(f"{name:<20} {result['rps']:>9.0f} {result['p50']:>8.2f} {result['p99']:>8.2f} "
              f"{result['non_2xx']:>8}  {result['socket_errors']}")
    direct, nginx, gateway = results["direct"], results["nginx"], results["gateway"]
    print("ratios (gateway / other; req/s above 1 is faster, latency above 1 is slower):")
    for label, other in (("direct", direct), ("nginx", nginx)):
        print(f"  gateway/{label:<6}  req/s {gateway['rps'] / other['rps']:.2f}  "
              f"p50 {gateway['p50'] / other['p50']:.2f}  p99 {gateway['p99'] / other['p99']:.2f}")
    print(f"  nginx/direct    req/s {nginx['rps'] / direct['rps']:.2f}  "
          f"p50 {nginx['p50'] / direct['p50']:.2f}  p99 {nginx['p99'] / direct['p99']:.2f}")
    for suffix in ("", " to stub"):
        single, workers = results["gateway" + suffix], results[several + suffix]
        print(f"  gateway{suffix} {args.workers} workers / 1 worker  req/s {workers['rps'] / single['rps']:.2f}  "
              f"p50 {workers['p50'] / single['p50']:.2f}  p99 {workers['p99'] / single['p99']:.2f}")
    for name, result in results.items():
        print(latency_line(name, result["latency"]))
    # Counts over each measured run; suite.py divides them by the run's requests.
    print("idle-counts: " + " ".join(f"{key}={value}" for key, value in idle.items()))
    for name, result in results.items():
        counts = " ".join(f"{key}={value}" for key, value in result["counts"].items())
        print(f"run-counts {name}: requests={result['requests']} duration_us={result['duration_us']} {counts}")
    # CPU seconds of each process over each measured run, processes idle in that run left out.
    for name, result in results.items():
        cpu = "; ".join(f"{label}={seconds:.2f}" for label, seconds in result["cpu"].items() if seconds >= 0.005)
        print(f"cpu-s {name}: {cpu}")


if __name__ == "__main__":
    sys.exit(main())
