"""Benchmark full browser sign-ins against client_credentials tokens, in one run.

    python bench/bench_signin.py [--seconds 10] [--users 8]

Starts a private redis-server and SecantusDB (unless REDIS_URL and MONGO_URL are
set), seeds the demo users and starts identity_srv, all on free 127.0.0.1 ports.
Then, with one Python asyncio load generator (aiohttp, keep-alive), it measures
in turn for the same number of seconds:

1. full sign-ins: authorize, login page, login post, resume, and the code
   exchange at the token endpoint, each virtual user with its own cookie jar;
2. client_credentials token requests with the same number of connections;
3. bcrypt verifications per second at the configured cost, on as many threads as
   the machine has cores (before and after the load, the faster run kept), which
   bounds how fast any sign-in can be.

It prints each rate and the ratios sign-ins ÷ tokens and sign-ins ÷ bcrypt. Both
the generator and the server share this machine's cores, so absolute rates mean
little; the ratios are the result.

Then it measures the client_credentials latency at a light load, once with the
server idle and once while the sign-in load above keeps bcrypt busy, and prints
both p99 values and their ratio. The probe is wrk in its own process, so the
asyncio sign-in generator cannot delay the probe's requests in its own event
loop. A Lua script makes wrk POST the token request on each of
`--probe-connections` connections and wait `--probe-delay-ms` between a response
and the next request.

It also prints the latency distribution of each load (`latency-us` lines) and,
before stopping identity_srv, the peak resident memory of its process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
import bcrypt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import (  # noqa: E402
    latency_line,
    parse_wrk_latency,
    parse_wrk_summary,
    percentiles_of,
    print_peak_memory,
    write_wrk_script,
)

from servicekit.embedded import free_port, redis_server, secantus_server  # noqa: E402
from tests.support.processes import ServiceProcess  # noqa: E402

REDIRECT_URI = "http://localhost:5002/signin-oidc"
BASIC_WEB = {"Authorization": "Basic " + base64.b64encode(b"movies_mvc_client:secret").decode("ascii")}
BASIC_MACHINE = {"Authorization": "Basic " + base64.b64encode(b"movieClient:secret").decode("ascii")}
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')

# wrk's `delay` hook returns the milliseconds to wait before a connection sends its next request.
PROBE_SCRIPT = """
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=movieAPI"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "{authorization}"
delay = function() return {delay_ms} end
"""


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def sign_in(session: aiohttp.ClientSession, issuer: str) -> None:
    """Sign in once as a browser without a session would; raise on any failure."""
    session.cookie_jar.clear()
    verifier, challenge = pkce_pair()
    params = {"client_id": "movies_mvc_client", "redirect_uri": REDIRECT_URI, "response_type": "code",
              "scope": "openid profile movieAPI offline_access", "state": secrets.token_urlsafe(8),
              "code_challenge": challenge, "code_challenge_method": "S256"}
    async with session.get(f"{issuer}/connect/authorize", params=params, allow_redirects=False) as response:
        login_url = urljoin(issuer, response.headers["Location"])
    async with session.get(login_url) as response:
        fields = dict(_HIDDEN.findall(await response.text()))
    form = {**fields, "username": "alice", "password": "alice", "action": "login"}
    async with session.post(f"{issuer}/account/login", data=form, allow_redirects=False) as response:
        if response.status != 302:
            raise RuntimeError(f"login returned HTTP {response.status}")
        resume_url = urljoin(issuer, response.headers["Location"])
    async with session.get(resume_url, allow_redirects=False) as response:
        code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}
    async with session.post(f"{issuer}/connect/token", data=data, headers=BASIC_WEB) as response:
        if response.status != 200:
            raise RuntimeError(f"code exchange returned HTTP {response.status}")
        await response.read()


async def machine_token(session: aiohttp.ClientSession, issuer: str) -> None:
    data = {"grant_type": "client_credentials", "scope": "movieAPI"}
    async with session.post(f"{issuer}/connect/token", data=data, headers=BASIC_MACHINE) as response:
        if response.status != 200:
            raise RuntimeError(f"token request returned HTTP {response.status}")
        await response.read()


async def drive(operation, issuer: str, users: int, seconds: float) -> tuple[int, int, list[float]]:
    """Run `operation` from `users` concurrent clients for `seconds`.

    Returns the number done, the number failed, and the latency in seconds of each one done.
    An operation that ends after the deadline is not counted, so that the rate is the
    number done divided by `seconds`.
    """
    done = failed = 0
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.monotonic() + seconds

    async def user() -> None:
        nonlocal done, failed
        # Each virtual user is a browser of its own: its own cookies and connection.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            while time.monotonic() < deadline:
                try:
                    started = time.perf_counter()
                    await operation(session, issuer)
                    if time.monotonic() > deadline:
                        break
                    latencies.append(time.perf_counter() - started)
                    done += 1
                except (aiohttp.ClientError, RuntimeError, KeyError) as exc:
                    failed += 1
                    errors[str(exc)] = errors.get(str(exc), 0) + 1

    await asyncio.gather(*(user() for _ in range(users)))
    for message, count in errors.items():
        print(f"  {count} x {message}")
    return done, failed, latencies


def probe_command(script: Path, issuer: str, seconds: float, connections: int) -> list[str]:
    return ["wrk", "-t1", f"-c{connections}", f"-d{max(round(seconds), 1)}s", "-s", str(script),
            f"{issuer}/connect/token"]


def read_probe(output: str) -> dict[str, float]:
    """Return the probe's latency percentiles in microseconds; raise when a request failed."""
    summary = parse_wrk_summary(output)
    failed = sum(value for key, value in summary.items() if key not in ("requests", "duration_us"))
    if failed or "Non-2xx" in output:
        raise SystemExit(f"the token latency probe had failed requests:\n{output}")
    return {**parse_wrk_latency(output), "requests": summary["requests"]}


async def probe_during_signins(script: Path, issuer: str, users: int, seconds: float,
                               connections: int) -> tuple[dict[str, float], int]:
    """Run the probe while `users` sign in; return its percentiles and the sign-ins done meanwhile.

    The sign-ins start one second before the probe and end one second after it, so
    that bcrypt is busy for the whole probe.
    """
    load = asyncio.create_task(drive(sign_in, issuer, users, seconds + 2))
    await asyncio.sleep(1)
    process = await asyncio.create_subprocess_exec(*probe_command(script, issuer, seconds, connections),
                                                   stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    done, _, _ = await load
    if process.returncode != 0:
        raise SystemExit(f"wrk failed with exit status {process.returncode}:\n{output.decode()}")
    return read_probe(output.decode()), done


def bcrypt_rate(cost: int, seconds: float) -> float:
    stored = bcrypt.hashpw(b"x" * 44, bcrypt.gensalt(cost))
    threads = os.cpu_count() or 1
    deadline = time.monotonic() + seconds
    counts = [0] * threads

    def work(index: int) -> None:
        while time.monotonic() < deadline:
            bcrypt.checkpw(b"x" * 44, stored)
            counts[index] += 1

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    return sum(counts) / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument("--users", type=int, default=8, help="concurrent virtual users (default 8)")
    parser.add_argument("--cost", type=int, default=12, help="bcrypt cost of the seeded users (default 12)")
    parser.add_argument("--probe-connections", type=int, default=2,
                        help="connections of the token latency probe (default 2)")
    parser.add_argument("--probe-delay-ms", type=int, default=10,
                        help="milliseconds each probe connection waits between requests (default 10)")
    args = parser.parse_args()
    probe = shutil.which("wrk") is not None

    work = Path(tempfile.mkdtemp(prefix="bench-signin-"))
    stores = []
    env = dict(os.environ)
    if not env.get("REDIS_URL"):
        stores.append(redis_server(free_port(), work / "redis", persistent=False))
    if not env.get("MONGO_URL"):
        stores.append(secantus_server(free_port(), work / "secantusdb"))
    service = None
    try:
        for store in stores:
            store.start(timeout=60)
            env["REDIS_URL" if store.kind == "redis" else "MONGO_URL"] = store.url
        env["IDENTITY__PASSWORDS__BCRYPT_COST"] = str(args.cost)
        # The benchmark signs in the same user thousands of times; failures would
        # only come from mistakes, so the throttle keeps its defaults.
        subprocess.run([sys.executable, "scripts/seed_users.py"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        service = ServiceProcess("identity_srv", {**env, "LOG_LEVEL": "warning"}, work / "identity.log")
        service.env["ISSUER"] = service.url
        service.start()
        issuer = service.url

        asyncio.run(drive(sign_in, issuer, 2, 1.0))  # warm-up: keys loaded, connections open
        script = write_wrk_script(work / "probe.lua", PROBE_SCRIPT.format(
            authorization=BASIC_MACHINE["Authorization"], delay_ms=args.probe_delay_ms))
        # bcrypt is measured before and after the load and the faster run kept, so
        # that a burst of other work on a shared machine lowers it less.
        hashes_before = bcrypt_rate(args.cost, args.seconds / 2)
        print(f"measuring {args.seconds:g} s each with {args.users} concurrent users; "
              f"load generator: aiohttp in one process; {os.cpu_count()} cores shared with the server")
        signins, signin_failures, signin_latencies = asyncio.run(drive(sign_in, issuer, args.users, args.seconds))
        tokens, token_failures, token_latencies = asyncio.run(drive(machine_token, issuer, args.users,
                                                                    args.seconds))
        hashes = max(hashes_before, bcrypt_rate(args.cost, args.seconds / 2))
        if probe:
            idle_output = subprocess.run(probe_command(script, issuer, args.seconds, args.probe_connections),
                                         capture_output=True, text=True, check=True).stdout
            idle = read_probe(idle_output)
            loaded, signins_during_probe = asyncio.run(probe_during_signins(
                script, issuer, args.users, args.seconds, args.probe_connections))
    finally:
        if service is not None:
            if service.process is not None and service.process.poll() is None:
                print_peak_memory("identity_srv", service.process.pid)
            service.stop()
        for store in reversed(stores):
            store.stop()

    signin_rate = signins / args.seconds
    token_rate = tokens / args.seconds
    print(f"full sign-ins:              {signin_rate:8.1f} /s  ({signin_failures} failed)")
    print(f"client_credentials tokens:  {token_rate:8.1f} /s  ({token_failures} failed)")
    print(f"bcrypt verifications:       {hashes:8.1f} /s  (cost {args.cost}, {os.cpu_count()} threads)")
    print(f"ratio sign-ins / tokens:    {signin_rate / token_rate:8.3f}")
    print(f"ratio sign-ins / bcrypt:    {signin_rate / hashes:8.3f}")
    print(latency_line("full sign-in", percentiles_of(signin_latencies)))
    print(latency_line("client_credentials token (aiohttp)", percentiles_of(token_latencies)))
    if not probe:
        print("token latency probe: not run, because wrk is missing (apt-get install -y wrk)")
        return
    print(f"token latency probe: wrk, {args.probe_connections} connections, each waiting "
          f"{args.probe_delay_ms} ms between requests, {args.seconds:g} s per run")
    print(f"client_credentials p99, idle server:        {idle['99'] / 1000:8.2f} ms  "
          f"({idle['requests']:.0f} requests)")
    print(f"client_credentials p99, during sign-ins:    {loaded['99'] / 1000:8.2f} ms  "
          f"({loaded['requests']:.0f} requests, {signins_during_probe} sign-ins meanwhile)")
    print(f"ratio p99 during sign-ins / idle:  {loaded['99'] / idle['99']:8.2f}")
    for name, result in (("token probe, idle", idle), ("token probe, during sign-ins", loaded)):
        print(latency_line(name, {key: value for key, value in result.items() if key != "requests"}))


if __name__ == "__main__":
    main()
