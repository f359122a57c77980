"""Benchmark token issuance: client_credentials tokens per second against a bare Tornado handler.

    python bench/bench_tokens.py [--seconds 10] [--connections 32] [--workers 2]

Starts everything it measures on free 127.0.0.1 ports, each as a single process:
a private redis-server and SecantusDB (unless REDIS_URL and MONGO_URL are set),
identity_srv once with RS256 and once with ES256 keys, and a bare Tornado
application on the same event loop (uvloop). The bare application's one handler returns a small JSON document for
a POST. The load generator is
`wrk` when it is installed (a Lua script makes it POST the token request), else a
Python asyncio client over keep-alive connections, which the output names.

Every token request sends the demo client's credentials (movieClient / secret) in
a Basic header, so the rate includes the secret check, the RS256 or ES256
signature and the per-request access and audit log lines (written to a file).
The ratio divides the token rate by the bare handler's rate measured in the same
run, which cancels out most of the machine's speed. Then identity_srv runs with
`--workers` processes (RS256), and the last line divides that rate by the
one-process RS256 rate. The load generator runs on the same machine and takes CPU
time from the workers.

Right after the bare handler, it times PyJWT signing a token-shaped claim set
with a key object parsed once, as identity_srv does, for each algorithm. A
server that did the bare handler's work plus that signature and nothing else
would serve bare × signatures ÷ (bare + signatures) requests per second; the
`ceiling` lines give that rate's ratio to the bare handler, the most that
measurement 1 can reach on this machine.

For each target it also prints the latency distribution (`latency-us` lines,
from a wrk Lua `done` hook or from the Python client's own timings), and before
each identity_srv stops, the peak resident memory (VmHWM) of its processes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import jwt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import (  # noqa: E402
    latency_line,
    parse_wrk_latency,
    percentiles_of,
    print_peak_memory,
    write_wrk_script,
)

from identity_srv.keystore import generate_private_key  # noqa: E402
from servicekit.embedded import EmbeddedServer, free_port, redis_server, secantus_server  # noqa: E402

TOKEN_BODY = "grant_type=client_credentials&scope=movieAPI"
AUTHORIZATION = "Basic " + base64.b64encode(b"movieClient:secret").decode("ascii")

# The bare handler runs on uvloop, the services' default event loop (`http.event_loop`),
# so that the ratio measures identity_srv's work and not the loop.
BARE_SERVER = """
import asyncio, sys, tornado.web, uvloop
class Handler(tornado.web.RequestHandler):
    def post(self):
        self.set_header("Cache-Control", "no-store")
        self.write({"ok": True, "size": len(self.request.body)})
async def serve():
    app = tornado.web.Application([(r"/connect/token", Handler)])
    app.listen(int(sys.argv[1]), address="127.0.0.1")
    await asyncio.Event().wait()
with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
    runner.run(serve())
"""

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = "{body}"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "{authorization}"
"""


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url, data=TOKEN_BODY.encode(), method="POST",
                                             headers={"Content-Type": "application/x-www-form-urlencoded",
                                                      "Authorization": AUTHORIZATION})
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not return 200 within {timeout:.0f}s")


def run_wrk(url: str, seconds: int, connections: int, script: Path) -> tuple[float, dict[str, float]]:
    """Return the requests per second and the latency percentiles (microseconds) of one wrk run."""
    result = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                            capture_output=True, text=True, check=True)
    if "Non-2xx" in result.stdout:
        raise SystemExit(f"some requests to {url} failed:\n{result.stdout}")
    match = re.search(r"Requests/sec:\s+([0-9.]+)", result.stdout)
    if match is None:
        raise SystemExit(f"could not read the rate from wrk's output:\n{result.stdout}")
    return float(match.group(1)), parse_wrk_latency(result.stdout)


async def _python_client(host: str, port: int, path: str, stop_at: float, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    body = TOKEN_BODY.encode()
    request = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {AUTHORIZATION}\r\n"
               f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
               ).encode() + body
    try:
        while time.monotonic() < stop_at:
            sent = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"request failed: {head[:80]!r}")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
    finally:
        writer.close()


def run_python_client(url: str, seconds: int, connections: int) -> tuple[float, dict[str, float]]:
    """Return the requests per second and the latency percentiles (microseconds) of the Python client."""
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    latencies: list[float] = []

    async def load() -> float:
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(*(_python_client(host, port, path, stop_at, latencies) for _ in range(connections)))
        return len(latencies) / (time.monotonic() - started)

    rate = asyncio.run(load())
    return rate, percentiles_of(latencies)


def signatures_per_second(algorithm: str, seconds: float = 2.0) -> float:
    """Time `jwt.encode` of a claim set shaped like identity_srv's access tokens, key parsed once."""
    key = generate_private_key(algorithm)
    now = int(time.time())
    claims = {"iss": "http://127.0.0.1:5001", "sub": "movieClient", "aud": "movieAPI", "client_id": "movieClient",
              "scope": "movieAPI", "jti": secrets.token_urlsafe(18), "iat": now, "nbf": now, "exp": now + 3600}
    headers = {"kid": "k" * 43, "typ": "at+jwt"}
    count = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        jwt.encode(claims, key, algorithm=algorithm, headers=headers)
        count += 1
    return count / elapsed


def start_stores(work: Path, started: list[EmbeddedServer]) -> dict[str, str]:
    env = {}
    for variable, make in (("REDIS_URL", lambda: redis_server(free_port(), work / "redis", persistent=False)),
                           ("MONGO_URL", lambda: secantus_server(free_port(), work / "secantusdb"))):
        if os.environ.get(variable):
            env[variable] = os.environ[variable]
            continue
        server = make()
        server.start(timeout=60)
        started.append(server)
        env[variable] = server.url
    return env


def start_identity(store_env: dict[str, str], algorithm: str, work: Path,
                   workers: int = 1) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **store_env, "IDENTITY_PORT": str(port), "IDENTITY__HTTP__HOST": "127.0.0.1",
           "ISSUER": url, "IDENTITY__KEYS__ALGORITHM": algorithm, "IDENTITY__HTTP__WORKERS": str(workers),
           # A database per algorithm: the first key of each is created with that algorithm.
           "IDENTITY__MONGO__DATABASE": f"bench_{algorithm.lower()}_{port}"}
    log = open(work / f"identity_{algorithm}_{workers}.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "identity_srv"], env=env, cwd=ROOT, stdout=log,
                               stderr=subprocess.STDOUT)
    return process, url


def stop(process: subprocess.Popen, service: str | None = None) -> None:
    """Stop `process`; for a service, print the peak memory of its processes first."""
    if service is not None and process.poll() is None:
        print_peak_memory(service, process.pid)
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description="Measure client_credentials tokens per second.")
    parser.add_argument("--seconds", type=int, default=10, help="seconds of load per target (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument("--workers", type=int, default=2,
                        help="identity_srv processes for the last measurement, compared with one (default 2)")
    args = parser.parse_args()

    generator = "wrk" if shutil.which("wrk") else "python asyncio client"
    stores: list[EmbeddedServer] = []
    processes: list[subprocess.Popen] = []
    rates: dict[str, float] = {}
    latencies: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_tokens_") as tmp:
        work = Path(tmp)
        script = write_wrk_script(work / "token.lua",
                                  WRK_SCRIPT.format(body=TOKEN_BODY, authorization=AUTHORIZATION))

        def measure(name: str, url: str) -> None:
            if generator == "wrk":
                rates[name], latencies[name] = run_wrk(url, args.seconds, args.connections, script)
            else:
                rates[name], latencies[name] = run_python_client(url, args.seconds, args.connections)

        try:
            store_env = start_stores(work, stores)
            port = free_port()
            bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port)], cwd=ROOT)
            processes.append(bare)
            bare_url = f"http://127.0.0.1:{port}/connect/token"
            wait_until_up(bare_url)
            measure("bare Tornado JSON handler", bare_url)
            signatures = {algorithm: signatures_per_second(algorithm) for algorithm in ("RS256", "ES256")}

            for algorithm in ("RS256", "ES256"):
                process, url = start_identity(store_env, algorithm, work)
                processes.append(process)
                wait_until_up(f"{url}/connect/token")
                measure(f"identity_srv client_credentials {algorithm}", f"{url}/connect/token")
                stop(process, "identity_srv")

            process, url = start_identity(store_env, "RS256", work, args.workers)
            processes.append(process)
            wait_until_up(f"{url}/connect/token")
            measure(f"identity_srv RS256, {args.workers} workers", f"{url}/connect/token")
            stop(process, "identity_srv")
        finally:
            for process in processes:
                if process.poll() is None:
                    stop(process)
            for server in reversed(stores):
                server.stop()

    bare_rate = rates["bare Tornado JSON handler"]
    print(f"load generator: {generator}, {args.connections} connections, {args.seconds} s per target, "
          f"one process per server, loopback")
    for name, rate in rates.items():
        print(f"{name:<42} {rate:10.0f} requests/s   ratio to bare {rate / bare_rate:6.3f}")
    for algorithm, rate in signatures.items():
        ceiling = rate / (bare_rate + rate)
        reached = rates[f"identity_srv client_credentials {algorithm}"] / bare_rate / ceiling
        print(f"signatures {algorithm}: {rate:.0f} /s (PyJWT, key parsed once); "
              f"ceiling {algorithm}: {ceiling:.3f} of bare; identity_srv reached {reached:.0%} of it")
    for name, distribution in latencies.items():
        print(latency_line(name, distribution))
    one = rates["identity_srv client_credentials RS256"]
    several = rates[f"identity_srv RS256, {args.workers} workers"]
    print(f"identity_srv RS256 {args.workers} workers / 1 worker: {several / one:.2f} "
          f"({os.cpu_count()} cores, load generator on the same machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
