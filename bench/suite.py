#!/usr/bin/env python3
"""Run the benchmark scripts in bench/ as one suite and write bench/report.md and bench/report.json.

    .venv/bin/python bench/suite.py [--seconds 10] [--only tokens,gateway]

Each scenario is one script (bench_tokens.py, bench_gateway.py, bench_signin.py,
bench_movies.py, bench_webclient.py, bench_traps.py) run as a subprocess with
`--seconds`. Every script starts its own redis-server, SecantusDB, services and
(for the gateway) nginx on free 127.0.0.1 ports and stops them before it exits.
This module parses their text output, divides each measurement by its reference
from the same run, compares the ratio with the goal of the performance issue and
writes PASS or FAIL beside it, or "no result" when a script printed no value.
A progress line on stderr names the running scenario and the estimated time left.

Besides the rates, the scripts print the lines that benchlib.py defines: latency
percentiles, which become one plot per scenario (bench/latency-<scenario>.png),
the peak resident memory of every service process (measurement 7), and for the
gateway the CPU seconds of each process and the counters behind the trap rows.

The raw output of every script goes to bench/results/<scenario>.txt, so a
parse failure can be checked against what the script printed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchlib import PERCENTILES, parse_latency_lines

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"

# Seconds each script needs besides its measured seconds: starting Redis,
# SecantusDB and the services, and stopping them. An estimate from runs on a
# 2-vCPU VM, used only for the progress line and the per-scenario timeout.
STARTUP_SECONDS = 10
WARMUP_SECONDS = 2
# Gateway processes of the several-worker targets of bench_gateway.py.
GATEWAY_WORKERS = 2


@dataclass
class Scenario:
    """One benchmark script, its arguments and how long it runs per measured second."""

    name: str
    script: str
    arguments: list[str]
    # The script's run time is about `periods * seconds + fixed` seconds.
    periods: float
    fixed: float

    def command(self, python: str, seconds: int) -> list[str]:
        return [python, str(BENCH / self.script), "--seconds", str(seconds), *self.arguments]

    def estimate(self, seconds: int) -> float:
        return self.periods * seconds + self.fixed


def build_scenarios() -> list[Scenario]:
    warmup = ["--warmup", str(WARMUP_SECONDS)]
    return [
        # bare handler, RS256, ES256, RS256 with 2 workers: four wrk runs.
        Scenario("tokens", "bench_tokens.py", ["--workers", "2"], 4, STARTUP_SECONDS + 10),
        # direct, nginx, gateway, gateway x2, gateway and gateway x2 to the stub,
        # stub direct: seven wrk runs, each after a warm-up. 50 connections,
        # because measurement 3 is the p99 at 50 connections.
        # Three rounds of all seven, each target reporting its median run,
        # because the gateway's ratios sit near their goals on a 2-core machine.
        Scenario("gateway", "bench_gateway.py",
                 [*warmup, "--connections", "50", "--workers", str(GATEWAY_WORKERS), "--rounds", "3"],
                 21, STARTUP_SECONDS + 21 * WARMUP_SECONDS),
        # sign-ins, tokens, bcrypt twice for half the seconds each, the token
        # latency probe idle, and the probe during sign-ins (2 s longer).
        Scenario("signin", "bench_signin.py", [], 5, STARTUP_SECONDS + 5),
        # without token check, with the validated-token cache, without it.
        Scenario("movies", "bench_movies.py", warmup, 3, STARTUP_SECONDS + 3 * WARMUP_SECONDS),
        # the gateway call, then the webclient page that makes it.
        Scenario("webclient", "bench_webclient.py", warmup, 2, STARTUP_SECONDS + 2 * WARMUP_SECONDS),
        # Signing and secret checks take half the seconds per side, and each of
        # the two Redis cases the full seconds. Fixed: an RSA key and a redis-server.
        Scenario("traps", "bench_traps.py", [], 4, 5),
    ]


@dataclass
class Measurement:
    """One row of the report: a value, its reference, and the goal the ratio must meet."""

    number: str
    name: str
    value: float | None = None
    reference_name: str = ""
    reference: float | None = None
    ratio: float | None = None
    goal: str = ""
    status: str = "not measured"
    command: str = ""
    note: str = ""
    extra: dict = field(default_factory=dict)


# -- running the scripts ------------------------------------------------------------

def run_scenario(scenario: Scenario, command: list[str], estimate: float, remaining_after: float,
                 index: int, total: int) -> tuple[int, str]:
    """Run one script, show progress on stderr, and return its exit status and stdout."""
    log_path = RESULTS / f"{scenario.name}.txt"
    started = time.monotonic()
    # Three times the estimate and two minutes more, because a shared machine can
    # be much slower than the one the estimates came from.
    timeout = 3 * estimate + 120
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + shlex.join(command) + "\n")
        log.flush()
        # A new session, so that a timeout can stop the script and the servers it started.
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, start_new_session=True)
        lines: list[str] = []

        def collect() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                log.write(line)
                log.flush()

        reader = threading.Thread(target=collect, daemon=True)
        reader.start()
        timed_out = False
        while process.poll() is None:
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                timed_out = True
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                break
            left = max(estimate - elapsed, 0) + remaining_after
            show_progress(f"[{index}/{total}] {scenario.name}: {elapsed:4.0f} s elapsed, "
                          f"about {format_duration(left)} left in the suite")
            time.sleep(1)
        reader.join(10)
    show_progress("")
    elapsed = time.monotonic() - started
    outcome = "timed out" if timed_out else f"exit status {process.returncode}"
    print(f"[{index}/{total}] {scenario.name}: {outcome} after {elapsed:.0f} s "
          f"(output in {log_path.relative_to(ROOT)})", file=sys.stderr)
    return (-1 if timed_out else process.returncode), "".join(lines)


def show_progress(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K" + text)
        sys.stderr.flush()
    elif text:
        # Without a terminal, one line every 15 seconds is enough for a log.
        now = int(time.monotonic())
        if now % 15 == 0:
            print(text, file=sys.stderr)


def describe_outcome(status: int) -> str:
    if status == 0:
        return "ok"
    if status == -1:
        return "timed out"
    return f"failed with exit status {status}"


def format_duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


# -- parsing the scripts' output ------------------------------------------------------

def parse_tokens(output: str) -> dict[str, float]:
    """Map each target of bench_tokens.py to its requests per second."""
    rates = {}
    for match in re.finditer(r"^(.+?)\s+([\d.]+) requests/s\s+ratio to bare", output, re.MULTILINE):
        rates[match.group(1).strip()] = float(match.group(2))
    return rates


def parse_signatures(output: str) -> dict[str, float]:
    """Map each algorithm that bench_tokens.py timed to its signatures per second."""
    return {match.group(1): float(match.group(2))
            for match in re.finditer(r"^signatures (\w+): ([\d.]+) /s", output, re.MULTILINE)}


def parse_gateway(output: str) -> dict[str, dict[str, float]]:
    """Map each target of bench_gateway.py to its req/s, p50, p99 and error counts."""
    results = {}
    pattern = (r"^(direct|nginx|stub direct|gateway(?: x\d+)?(?: to stub)?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)"
               r"\s+(\d+)\s+(.*)$")
    for match in re.finditer(pattern, output, re.MULTILINE):
        results[match.group(1)] = {
            "rps": float(match.group(2)), "p50_ms": float(match.group(3)), "p99_ms": float(match.group(4)),
            "non_2xx": int(match.group(5)), "socket_errors": match.group(6).strip(),
        }
    return results


def parse_gateway_rounds(output: str) -> dict[str, list[float]]:
    """Map each target of bench_gateway.py to its req/s in every round, in order."""
    return {match.group(1): [float(value) for value in match.group(2).split()]
            for match in re.finditer(r"^rounds (.+?): req/s ([\d. ]+)$", output, re.MULTILINE)}


def judge_by_rounds(row: Measurement, rounds: dict[str, list[float]], target: str, reference: str,
                    minimum: float) -> Measurement:
    """Judge `row` by the median of its per-round ratios, each measured side by side.

    The row's value and reference stay each target's median run. The ratio of
    those two medians can differ from the median ratio, and only the second pairs
    runs measured one after the other.
    """
    if row.ratio is None or target not in rounds or reference not in rounds:
        return row
    ratios = [value / other for value, other in zip(rounds[target], rounds[reference]) if other]
    if not ratios:
        return row
    row.ratio = statistics.median(ratios)
    row.status = "PASS" if row.ratio >= minimum else "FAIL"
    note = (f"Value and reference: each target's median of {len(ratios)} rounds; ratio: the median of the "
            f"per-round ratios {', '.join(f'{ratio:.2f}' for ratio in ratios)}")
    row.note = f"{row.note}. {note}" if row.note else note
    return row


def parse_signin(output: str) -> dict[str, float]:
    """Return the sign-in, token and bcrypt rates and failure counts of bench_signin.py."""
    values = {}
    patterns = {
        "signins": r"full sign-ins:\s+([\d.]+) /s\s+\((\d+) failed\)",
        "tokens": r"client_credentials tokens:\s+([\d.]+) /s\s+\((\d+) failed\)",
    }
    for key, pattern in patterns.items():
        match = re.search(pattern, output)
        if match:
            values[key] = float(match.group(1))
            values[f"{key}_failed"] = int(match.group(2))
    match = re.search(r"bcrypt verifications:\s+([\d.]+) /s\s+\(cost (\d+)", output)
    if match:
        values["bcrypt"] = float(match.group(1))
        values["bcrypt_cost"] = int(match.group(2))
    for key, label in (("p99_idle_ms", "idle server"), ("p99_loaded_ms", "during sign-ins")):
        match = re.search(rf"client_credentials p99, {label}:\s+([\d.]+) ms", output)
        if match:
            values[key] = float(match.group(1))
    match = re.search(r"^token latency probe: (.+)$", output, re.MULTILINE)
    if match:
        values["probe"] = match.group(1)
    return values


def parse_rates(output: str) -> dict[str, float]:
    """Map each case of bench_movies.py or bench_webclient.py to its requests per second."""
    rates = {}
    for match in re.finditer(r"^GET /(?:api/)?movies/\{id\} (.+?): ([\d,]+) requests/s", output, re.MULTILINE):
        rates[match.group(1)] = float(match.group(2).replace(",", ""))
    return rates


def parse_peak_memory(outputs: dict[str, str]) -> dict[str, list[dict]]:
    """Map each service to the `peak-rss` lines of its processes across all scenarios."""
    processes: dict[str, list[dict]] = {}
    pattern = r"^peak-rss (\S+) pid=(\d+) role=(\w+) mb=([\d.]+)$"
    for scenario, output in outputs.items():
        for match in re.finditer(pattern, output, re.MULTILINE):
            processes.setdefault(match.group(1), []).append({
                "scenario": scenario, "pid": int(match.group(2)), "role": match.group(3),
                "peak_rss_mb": float(match.group(4))})
    return processes


def parse_run_counts(output: str) -> dict[str, dict[str, int]]:
    """Map each bench_gateway.py target to the counters of its measured run (requests, JWKS fetches, ...)."""
    counts = {}
    for match in re.finditer(r"^run-counts (.+?): (.+)$", output, re.MULTILINE):
        counts[match.group(1)] = {key: int(value) for key, value in
                                  (item.split("=") for item in match.group(2).split())}
    return counts


def parse_idle_counts(output: str) -> dict[str, int]:
    """Return the counters of bench_gateway.py over its seconds without load, with their duration."""
    match = re.search(r"^idle-counts: (.+)$", output, re.MULTILINE)
    if match is None:
        return {}
    return {key: int(value) for key, value in (item.split("=") for item in match.group(1).split())}


def parse_cpu(output: str) -> dict[str, dict[str, float]]:
    """Map each bench_gateway.py target to the CPU seconds of each process over its measured run."""
    cpu = {}
    for match in re.finditer(r"^cpu-s (.+?): (.*)$", output, re.MULTILINE):
        cpu[match.group(1)] = {label: float(seconds) for label, seconds in
                               (item.rsplit("=", 1) for item in match.group(2).split("; ") if item)}
    return cpu


def parse_traps(output: str) -> dict[str, tuple[float, float]]:
    """Map each `trap <name>: ours=<rate> trap=<rate>` line of bench_traps.py to (ours, trap)."""
    return {match.group(1): (float(match.group(2)), float(match.group(3)))
            for match in re.finditer(r"^trap (.+?): ours=([\d.]+) trap=([\d.]+)$", output, re.MULTILINE)}


# -- measurements and goals --------------------------------------------------------------

def ratio_row(number: str, name: str, value: float | None, reference_name: str, reference: float | None,
              minimum: float | None, command: str, note: str = "", maximum: float | None = None) -> Measurement:
    """Build a row whose ratio value / reference must be at least `minimum` or at most `maximum`."""
    row = Measurement(number, name, value, reference_name, reference, command=command, note=note)
    if minimum is not None:
        row.goal = f">= {minimum:g}"
    if maximum is not None:
        row.goal = f"<= {maximum:g}"
    if not command:
        row.status = "not run"
        row.note = "its scenario was left out with --only"
        return row
    if value is None or reference is None or reference == 0:
        # A measurement that a script should have produced but did not is
        # "no result", so that it is never read as "not measured yet" or PASS.
        row.status = "no result"
        row.note = (note + ". " if note else "") + "The script printed no value for this row (see its output)"
        return row
    row.ratio = value / reference
    if minimum is not None:
        row.status = "PASS" if row.ratio >= minimum else "FAIL"
    elif maximum is not None:
        row.status = "PASS" if row.ratio <= maximum else "FAIL"
    else:
        row.status = "no goal"
    return row


def ceiling_row(algorithm: str, signatures: float, bare: float | None, tokens: float | None,
                command: str) -> Measurement:
    """Build the row of the maximum ratio for measurement 1: bare handler work plus one signature."""
    ceiling = bare * signatures / (bare + signatures) if bare else None
    note = (f"Computed from {signatures:,.0f} signatures/s (PyJWT, key parsed once) timed in the same run: "
            f"a server that did nothing but the bare handler's work and one {algorithm} signature")
    if ceiling and tokens:
        note += f". identity_srv reached {tokens / ceiling:.0%} of it"
    return ratio_row("info", f"ceiling for measurement 1, {algorithm}: bare handler plus one signature, req/s",
                     ceiling, "bare Tornado JSON handler req/s", bare, None, command, note=note)


def build_measurements(outputs: dict[str, str], commands: dict[str, str]) -> list[Measurement]:
    rows: list[Measurement] = []

    tokens = parse_tokens(outputs.get("tokens", ""))
    bare = tokens.get("bare Tornado JSON handler")
    command = commands.get("tokens", "")
    rows.append(ratio_row("1", "client_credentials tokens/s, RS256, 1 worker",
                          tokens.get("identity_srv client_credentials RS256"),
                          "bare Tornado JSON handler req/s", bare, 0.25, command))
    rows.append(ratio_row("1", "client_credentials tokens/s, ES256, 1 worker",
                          tokens.get("identity_srv client_credentials ES256"),
                          "bare Tornado JSON handler req/s", bare, 0.35, command))
    for algorithm, rate in parse_signatures(outputs.get("tokens", "")).items():
        rows.append(ceiling_row(algorithm, rate, bare, tokens.get(f"identity_srv client_credentials {algorithm}"),
                                command))

    gateway = parse_gateway(outputs.get("gateway", ""))
    command = commands.get("gateway", "")

    def gateway_value(target: str, key: str) -> float | None:
        return gateway.get(target, {}).get(key)

    rounds = parse_gateway_rounds(outputs.get("gateway", ""))
    rows.append(judge_by_rounds(
        ratio_row("2", "GET /movies/{id} through gateway, req/s (against direct)", gateway_value("gateway", "rps"),
                  "direct to movies_srv req/s", gateway_value("direct", "rps"), 0.6, command),
        rounds, "gateway", "direct", 0.6))
    rows.append(judge_by_rounds(
        ratio_row("2", "GET /movies/{id} through gateway, req/s (against nginx)", gateway_value("gateway", "rps"),
                  "through nginx req/s", gateway_value("nginx", "rps"), 0.6, command),
        rounds, "gateway", "nginx", 0.6))
    rows.append(added_latency_row(gateway, command))

    signin = parse_signin(outputs.get("signin", ""))
    cost = signin.get("bcrypt_cost")
    rows.append(ratio_row("4", "full browser sign-ins/s", signin.get("signins"),
                          f"bcrypt verifications/s (cost {cost:g})" if cost else "bcrypt verifications/s",
                          signin.get("bcrypt"), 0.8, commands.get("signin", ""),
                          note="bcrypt runs on one thread per core, the sign-ins on one identity_srv process"))

    rows.append(ratio_row("5", "client_credentials p99 latency during sign-ins, ms", signin.get("p99_loaded_ms"),
                          "p99 with the server idle, ms", signin.get("p99_idle_ms"), None, commands.get("signin", ""),
                          maximum=3,
                          note=(f"probe: {signin['probe']}; " if "probe" in signin else "")
                          + "the sign-in load (an aiohttp process) starts 1 s before the probe and keeps "
                            "bcrypt busy until 1 s after it"))

    rows.append(ratio_row("6", "client_credentials tokens/s, RS256, 2 workers",
                          tokens.get("identity_srv RS256, 2 workers"), "1 worker tokens/s",
                          tokens.get("identity_srv client_credentials RS256"), 1.6, commands.get("tokens", "")))
    several = f"gateway x{GATEWAY_WORKERS}"
    stub_rate = gateway_value("stub direct", "rps")
    rows.append(judge_by_rounds(ratio_row(
                          "6", f"gateway req/s, {GATEWAY_WORKERS} workers, nginx stub downstream",
                          gateway_value(f"{several} to stub", "rps"), "1 worker, same stub, req/s",
                          gateway_value("gateway to stub", "rps"), 1.6, command,
                          note=("the gateway's downstream here is an nginx location that returns a fixed JSON "
                                "movie instead of movies_srv (same token, rate limits counted in Redis), because "
                                "with movies_srv, SecantusDB, Redis and wrk on the same 2 cores the one-worker "
                                "run already keeps both cores busy and the whole stack cannot show the "
                                "gateway's own scaling"
                                + (f"; the stub alone served {stub_rate:,.0f} req/s" if stub_rate else ""))),
        rounds, f"{several} to stub", "gateway to stub", 1.6))
    rows.append(ratio_row("info", f"GET /movies/{{id}} through gateway, {GATEWAY_WORKERS} workers, "
                          "whole stack, req/s", gateway_value(several, "rps"), "1 worker gateway req/s",
                          gateway_value("gateway", "rps"), None, command,
                          note="measurement 6 on the whole stack: one movies_srv process behind both gateways, "
                               "all of it on the same cores as wrk (see the CPU seconds below)"))

    rows.extend(memory_rows(outputs, commands))
    rows.extend(trap_rows(outputs, commands))
    rows.extend(gateway_trap_rows(outputs.get("gateway", ""), command))
    rows.extend(micro_trap_rows(outputs.get("traps", ""), commands.get("traps", "")))
    return rows


# The scenarios that start each service, for measurement 7.
SERVICE_SCENARIOS = {
    "identity_srv": ("tokens", "gateway", "signin"),
    "movies_srv": ("gateway", "movies", "webclient"),
    "gateway_srv": ("gateway", "webclient"),
    "webclient_srv": ("webclient",),
}
MEMORY_LIMIT_MB = 150


def memory_rows(outputs: dict[str, str], commands: dict[str, str]) -> list[Measurement]:
    """Build measurement 7: the largest peak RSS (VmHWM) of each service's processes across scenarios."""
    memory = parse_peak_memory(outputs)
    rows = []
    for service, scenarios in SERVICE_SCENARIOS.items():
        ran = [name for name in scenarios if commands.get(name)]
        row = Measurement("7", f"peak resident memory per process, {service}, MB", goal=f"<= {MEMORY_LIMIT_MB} MB",
                          command="; ".join(commands[name] for name in ran))
        processes = memory.get(service, [])
        if not ran:
            row.status, row.note = "not run", "every scenario that starts it was left out with --only"
        elif not processes:
            row.status, row.note = "no result", "no script printed its peak memory (see their output)"
        else:
            peak = max(processes, key=lambda process: process["peak_rss_mb"])
            row.value = peak["peak_rss_mb"]
            row.status = "PASS" if row.value <= MEMORY_LIMIT_MB else "FAIL"
            row.note = (f"VmHWM read just before the service stopped; the maximum over {len(processes)} "
                        f"process(es) in {', '.join(sorted({p['scenario'] for p in processes}))}, "
                        f"reached by a {peak['role']} process in the {peak['scenario']} scenario")
            row.extra = {"processes": processes}
        rows.append(row)
    return rows


def gateway_trap_rows(output: str, command: str) -> list[Measurement]:
    """Build the trap rows from bench_gateway.py's counters: JWKS fetches, new connections, Redis round trips."""
    counts = parse_run_counts(output)
    idle = parse_idle_counts(output)
    gateway_runs = {name: run for name, run in counts.items() if name.startswith("gateway")}
    gateway, direct = counts.get("gateway"), counts.get("direct")

    def per_request(run: dict[str, int] | None, key: str) -> float | None:
        return run[key] / run["requests"] if run and run.get("requests") else None

    rows = []
    requests = sum(run["requests"] for run in gateway_runs.values())
    fetches = sum(run["jwks_fetches"] for run in gateway_runs.values())
    rows.append(ratio_row("trap", "JWKS fetches per proxied request, all gateway runs",
                          fetches / requests if requests else None, "the trap: a fetch per request",
                          1.0, None, command,
                          note=(f"identity_srv logged {fetches} request(s) for the JWKS path during "
                                f"{requests:,} proxied requests") if requests else ""))
    opens = per_request(gateway, "tcp_active_opens")
    rows.append(ratio_row("trap", "new TCP connections per proxied request (gateway run)", opens,
                          "the trap: a connection per request", 1.0, None, command,
                          note=("the ActiveOpens delta of /proc/net/snmp over the run, which also counts wrk's "
                                "own connections and any other connect() on the machine, so it is an upper "
                                "bound; the direct run's value is "
                                + (f"{per_request(direct, 'tcp_active_opens'):.4f}" if direct else "missing")
                                + (f", and {idle['tcp_active_opens']} connections were opened in "
                                   f"{idle['duration_us'] / 1e6:.0f} s without load" if idle else ""))))

    def reads_per_request(run: dict[str, int] | None) -> float | None:
        """Return the run's Redis reads per request, less the reads the idle rate predicts for its duration."""
        if not run or not run.get("requests") or not idle.get("duration_us"):
            return None
        background = idle["redis_reads"] * run["duration_us"] / idle["duration_us"]
        return (run["redis_reads"] - background) / run["requests"]

    gateway_reads, direct_reads = reads_per_request(gateway), reads_per_request(direct)
    share = gateway_reads - direct_reads if gateway_reads is not None and direct_reads is not None else None
    idle_rate = (f"{idle['redis_reads'] / idle['duration_us'] * 1e6:.1f}/s" if idle.get("duration_us")
                 else "missing")
    row = ratio_row("trap", "Redis round trips per proxied request, the gateway's share", share,
                    "one round trip (deny list and rate limits together)", 1.0, None, command, maximum=1.1,
                    note=("The trap, one round trip per command, would read 3 here. The goal allows 10% "
                          "over one because Redis counts socket reads: a pipeline that arrives in two TCP "
                          "reads counts twice. The value is total_reads_processed per request in the "
                          "gateway run minus the same in the direct "
                          "run (movies_srv's share: "
                          + (f"{direct_reads:.2f}" if direct_reads is not None else "missing")
                          + "), each less the reads Redis served without load (" + idle_rate
                          + ") over the run's duration. The direct run, one EXISTS per request, also "
                            "reads slightly more than once per request. Redis commands per request: "
                            "gateway run "
                          + (f"{per_request(gateway, 'redis_commands'):.2f}" if gateway else "missing")
                          + ", direct run "
                          + (f"{per_request(direct, 'redis_commands'):.2f}" if direct else "missing")))
    if gateway and direct:
        row.extra = {"gateway_run": gateway, "direct_run": direct}
    rows.append(row)
    return rows


# Rows of bench_traps.py: its line name, then the row's name and its reference's name.
MICRO_TRAPS = {
    "RS256 signatures/s": ("RS256 signatures/s, key object parsed once (identity_srv)",
                           "the trap: PEM parsed per signature"),
    "client secret checks/s": ("client secret checks/s, SHA-256 digest (identity_srv)",
                               "the trap: bcrypt cost 12"),
    "Redis round trips/s, GET of one 200-byte value": ("Redis GET round trips/s, hiredis parser",
                                                       "the trap: pure-Python parser"),
    "Redis round trips/s, MGET of 20 200-byte values": ("Redis MGET of 20 values round trips/s, hiredis parser",
                                                        "the trap: pure-Python parser"),
}


def micro_trap_rows(output: str, command: str) -> list[Measurement]:
    """Build the trap rows of bench_traps.py: our way's rate beside the trap's, in one process."""
    traps = parse_traps(output)
    hiredis = re.search(r"^hiredis available: (.+)$", output, re.MULTILINE)
    rows = []
    for key, (name, reference_name) in MICRO_TRAPS.items():
        ours, trap = traps.get(key, (None, None))
        if key.startswith("Redis"):
            note = "one connection each, the two parsers alternating in four slices"
            if hiredis:
                note += f"; hiredis available: {hiredis.group(1)}"
        else:
            note = "one thread in one process, one side after the other"
        rows.append(ratio_row("trap", name, ours, reference_name, trap, None, command, note=note))
    return rows


def added_latency_row(gateway: dict[str, dict[str, float]], command: str) -> Measurement:
    """Build measurement 3: p99 latency the gateway and nginx each add over the direct call."""
    row = Measurement("3", "p99 latency added by the gateway, ms, 50 connections",
                      reference_name="p99 latency added by nginx, ms", goal="none (reported)", command=command)
    direct = gateway.get("direct", {}).get("p99_ms")
    through_gateway = gateway.get("gateway", {}).get("p99_ms")
    through_nginx = gateway.get("nginx", {}).get("p99_ms")
    if not command:
        row.status = "not run"
        row.note = "its scenario was left out with --only"
        return row
    if direct is None or through_gateway is None or through_nginx is None:
        row.status = "no result"
        row.note = "The script printed no p99 for direct, nginx or gateway (see its output)"
        return row
    row.value = through_gateway - direct
    row.reference = through_nginx - direct
    row.status = "no goal"
    row.extra = {"p99_direct_ms": direct, "p99_gateway_ms": through_gateway, "p99_nginx_ms": through_nginx}
    return row


def trap_rows(outputs: dict[str, str], commands: dict[str, str]) -> list[Measurement]:
    """Build the validated-token cache row of bench_movies.py and the info rows of movies and webclient."""
    rows = []
    movies = parse_rates(outputs.get("movies", ""))
    rows.append(ratio_row("trap", "movies_srv req/s, validated-token cache on",
                          movies.get("with token check (validated-token cache on, the default)"),
                          "the same with the cache off", movies.get("with token check, validated-token cache off"),
                          None, commands.get("movies", ""),
                          note="above 1 shows the signature is not verified again for a cached token"))
    rows.append(ratio_row("info", "movies_srv req/s with the token check (cache on)",
                          movies.get("with token check (validated-token cache on, the default)"),
                          "the same handler without the token check", movies.get("without token check"),
                          None, commands.get("movies", "")))
    webclient = parse_rates(outputs.get("webclient", ""))
    names = list(webclient)
    if len(names) >= 2:
        rows.append(ratio_row("info", f"webclient page req/s ({names[1]})", webclient[names[1]],
                              f"its gateway call req/s ({names[0]})", webclient[names[0]], None,
                              commands.get("webclient", "")))
    else:
        rows.append(ratio_row("info", "webclient page req/s", None, "its gateway call req/s", None, None,
                              commands.get("webclient", "")))
    return rows


# -- the report -------------------------------------------------------------------------

def machine_description() -> dict[str, object]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def format_number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def cpu_groups(processes: dict[str, float]) -> dict[str, float]:
    """Sum the CPU seconds of one run per program: a service's main process and workers together.

    The gateway targets each have their own gateway_srv processes, and only the
    measured one is busy, so all of them count as one gateway_srv column.
    """
    groups: dict[str, float] = {}
    for label, seconds in processes.items():
        group = re.sub(r" worker \d+$", "", label)
        group = re.sub(r"^gateway_srv \(.*\)$", "gateway_srv", group)
        groups[group] = groups.get(group, 0.0) + seconds
    return groups


CPU_COLUMNS = ("wrk", "gateway_srv", "movies_srv", "secantusdb", "redis-server", "nginx", "identity_srv")


def cpu_table(cpu: dict[str, dict[str, float]], seconds: int) -> list[str]:
    """Return report.md lines with the CPU seconds per program for each bench_gateway.py run."""
    if not cpu:
        return []
    lines = [
        ("CPU seconds per program over each measured gateway run (utime + stime from /proc/<pid>/stat, "
         f"workers included; wrk from its rusage). {seconds} s per run, so {2 * seconds} CPU seconds "
         "would keep both cores of a 2-core machine busy:"),
        "",
        "| target | " + " | ".join(CPU_COLUMNS) + " | total |",
        "|---|" + "---|" * (len(CPU_COLUMNS) + 1),
    ]
    for target, processes in cpu.items():
        groups = cpu_groups(processes)
        cells = [f"{groups.get(column, 0.0):.2f}" for column in CPU_COLUMNS]
        lines.append(f"| {target} | " + " | ".join(cells) + f" | {sum(groups.values()):.2f} |")
    return lines + [""]


def write_report(rows: list[Measurement], machine: dict, scenarios: dict[str, dict], plots: list[str],
                 plot_note: str, seconds: int, details: dict[str, object]) -> None:
    """Write bench/report.json (everything, with `details`) and bench/report.md."""
    (BENCH / "report.json").write_text(json.dumps({
        "machine": machine, "seconds_per_measurement": seconds, "scenarios": scenarios,
        "measurements": [asdict(row) for row in rows], "plots": plots, "plot_note": plot_note,
        **details,
    }, indent=2) + "\n", encoding="utf-8")

    lines = [
        "# Benchmark report",
        "",
        (f"Machine: {machine['cores']} cores, {machine['cpu_model']}, Linux {machine['kernel']}, "
         f"Python {machine['python']}, run {machine['date_utc']}, {seconds} s per measurement. "
         "Load generators and servers share these cores, so only the ratios compare across runs."),
        "",
        "| # | measurement | value | reference | reference value | ratio | goal | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row.ratio is None:
            ratio = "-"
        elif row.ratio < 100:
            ratio = f"{row.ratio:.2f}"
        else:
            ratio = f"{row.ratio:,.0f}"
        lines.append(f"| {row.number} | {row.name} | {format_number(row.value)} | {row.reference_name or '-'} "
                     f"| {format_number(row.reference)} | {ratio} | {row.goal or '-'} | {row.status} |")
    lines += ["", "Notes:", ""]
    for row in rows:
        if row.note:
            lines.append(f"- {row.number} {row.name}: {row.note}")
    lines += [""]
    lines += cpu_table(details.get("cpu_seconds_gateway", {}), seconds)
    lines += ["Commands (run from the repository root):", ""]
    for name, scenario in scenarios.items():
        lines.append(f"- {name}: `{scenario['command']}` ({scenario['outcome']}, {scenario['elapsed_s']:.0f} s)")
    lines += ["", "Latency plots (percentile curves of each target beside its reference, drawn dashed):", ""]
    lines += [f"- ![{plot}]({plot})" for plot in plots]
    if plot_note:
        lines.append(f"- {plot_note}")
    (BENCH / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


# Per scenario: the plot's title and the targets drawn dashed as references.
PLOTS = {
    "tokens": ("POST /connect/token (client_credentials) beside a bare Tornado handler",
               {"bare Tornado JSON handler"}),
    "gateway": ("GET /movies/{id} through the gateway beside direct and nginx", {"direct", "nginx", "stub direct"}),
    "signin": ("identity_srv: client_credentials idle and during sign-ins, and the sign-ins",
               {"token probe, idle"}),
    "movies": ("movies_srv GET /api/movies/{id} with the token check beside without",
               {"without token check"}),
    "webclient": ("webclient page beside its gateway call", {"gateway API call with the access token"}),
}


def percentile_position(percentile: float) -> float:
    """Map a percentile to 1 / (1 - p), which spreads the tail on a log axis: 90 -> 10, 99 -> 100."""
    return 1 / (1 - percentile / 100)


def write_plots(outputs: dict[str, str]) -> tuple[list[str], str]:
    """Write bench/latency-<scenario>.png for every scenario that printed latencies; return names and a note."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib import pyplot, ticker
    except ImportError:
        return [], "no plots: matplotlib is not installed (pip install -e '.[bench]')"
    plots = []
    missing = []
    for scenario, (title, references) in PLOTS.items():
        if scenario not in outputs:
            continue
        distributions = parse_latency_lines(outputs[scenario])
        if not distributions:
            missing.append(scenario)
            continue
        # The gateway's stub targets get a panel of their own, because their
        # latencies are those of a different downstream.
        panels = [[name for name in distributions if "stub" not in name],
                  [name for name in distributions if "stub" in name]]
        panels = [panel for panel in panels if panel]
        figure, axes_list = pyplot.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
        for axes, panel in zip(axes_list[0], panels):
            for name in panel:
                distribution = distributions[name]
                points = [(percentile_position(p), distribution[f"{p:g}"] / 1000)
                          for p in PERCENTILES if f"{p:g}" in distribution]
                axes.plot([x for x, _ in points], [y for _, y in points], marker="o", markersize=3,
                          linestyle="--" if name in references else "-", label=name)
            ticks = [50, 90, 99, 99.9, 99.99]
            axes.set_xscale("log")
            axes.set_yscale("log")
            axes.set_xticks([percentile_position(p) for p in ticks], [f"{p:g}%" for p in ticks])
            axes.xaxis.set_minor_locator(ticker.NullLocator())
            axes.yaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
            axes.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
            axes.yaxis.set_minor_formatter(ticker.NullFormatter())
            axes.set_xlabel("percentile")
            axes.set_ylabel("latency, ms (log scale)")
            axes.grid(True, which="major", alpha=0.3)
            axes.legend(fontsize=8)
        figure.suptitle(title, fontsize=10)
        figure.tight_layout()
        name = f"latency-{scenario}.png"
        figure.savefig(BENCH / name, dpi=100)
        pyplot.close(figure)
        plots.append(name)
    note = f"no plot for {', '.join(missing)}: the script failed or printed no latency lines" if missing else ""
    return plots, note


def main() -> int:
    scenarios = build_scenarios()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10,
                        help="measured seconds per target in each script (default 10, about 6 minutes in all on 2 cores)")
    parser.add_argument("--only", default="",
                        help="comma-separated scenarios to run (default: all of "
                             + ", ".join(s.name for s in scenarios) + ")")
    args = parser.parse_args()
    if args.seconds < 1:
        parser.error(f"--seconds must be at least 1, got {args.seconds}")
    if args.only:
        selected = {name.strip() for name in args.only.split(",") if name.strip()}
        unknown = selected - {s.name for s in scenarios}
        if unknown:
            parser.error(f"unknown scenarios {sorted(unknown)}; choose from {[s.name for s in scenarios]}")
        scenarios = [s for s in scenarios if s.name in selected]

    RESULTS.mkdir(parents=True, exist_ok=True)
    estimates = [s.estimate(args.seconds) for s in scenarios]
    print(f"running {len(scenarios)} scenarios, about {format_duration(sum(estimates))} in all",
          file=sys.stderr)
    outputs: dict[str, str] = {}
    commands: dict[str, str] = {}
    summary: dict[str, dict] = {}
    for index, scenario in enumerate(scenarios):
        command = scenario.command(sys.executable, args.seconds)
        display = shlex.join([".venv/bin/python", *[str(Path(part).relative_to(ROOT))
                                                     if part.startswith(str(ROOT)) else part
                                                     for part in command[1:]]])
        started = time.monotonic()
        status, output = run_scenario(scenario, command, estimates[index], sum(estimates[index + 1:]),
                                      index + 1, len(scenarios))
        outputs[scenario.name] = output if status == 0 else ""
        commands[scenario.name] = display
        summary[scenario.name] = {
            "command": display,
            "outcome": describe_outcome(status),
            "elapsed_s": time.monotonic() - started,
            "output": str((RESULTS / f"{scenario.name}.txt").relative_to(ROOT)),
        }

    rows = build_measurements(outputs, commands)
    plots, plot_note = write_plots(outputs)
    details = {
        "cpu_seconds_gateway": parse_cpu(outputs.get("gateway", "")),
        "peak_memory": parse_peak_memory(outputs),
        "latency_us": {name: parse_latency_lines(output) for name, output in outputs.items()},
        "gateway_run_counts": parse_run_counts(outputs.get("gateway", "")),
        "gateway_idle_counts": parse_idle_counts(outputs.get("gateway", "")),
    }
    write_report(rows, machine_description(), summary, plots, plot_note, args.seconds, details)
    print((BENCH / "report.md").read_text(encoding="utf-8"))
    failed = [name for name, scenario in summary.items() if scenario["outcome"] != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
