#!/usr/bin/env python3
"""Run the benchmark scripts in bench/ as one suite and write bench/report.md and bench/report.json.

    .venv/bin/python bench/suite.py [--seconds 10] [--only tokens,gateway]

Each scenario is one existing script (bench_tokens.py, bench_gateway.py,
bench_signin.py, bench_movies.py, bench_webclient.py) run as a subprocess with
`--seconds`. Every script starts its own redis-server, SecantusDB, services and
(for the gateway) nginx on free 127.0.0.1 ports and stops them before it exits.
This module parses their text output, divides each measurement by its reference
from the same run, compares the ratio with the goal of the performance issue and
writes PASS, FAIL or "not measured" beside it. A progress line on stderr names
the running scenario and the estimated time left.

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
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"

# Seconds each script needs besides its measured seconds: starting Redis,
# SecantusDB and the services, and stopping them. An estimate from runs on a
# 2-vCPU VM, used only for the progress line and the per-scenario timeout.
STARTUP_SECONDS = 10
WARMUP_SECONDS = 2


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
        # direct, nginx, gateway, gateway x2: four wrk runs, each after a warm-up.
        # 50 connections, because measurement 3 is the p99 at 50 connections.
        Scenario("gateway", "bench_gateway.py", [*warmup, "--connections", "50", "--workers", "2"],
                 4, STARTUP_SECONDS + 4 * WARMUP_SECONDS),
        # sign-ins, tokens, and bcrypt twice for half the seconds each.
        Scenario("signin", "bench_signin.py", [], 3, STARTUP_SECONDS + 5),
        # without token check, with the validated-token cache, without it.
        Scenario("movies", "bench_movies.py", warmup, 3, STARTUP_SECONDS + 3 * WARMUP_SECONDS),
        # the gateway call, then the webclient page that makes it.
        Scenario("webclient", "bench_webclient.py", warmup, 2, STARTUP_SECONDS + 2 * WARMUP_SECONDS),
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


def parse_gateway(output: str) -> dict[str, dict[str, float]]:
    """Map each target of bench_gateway.py to its req/s, p50, p99 and error counts."""
    results = {}
    pattern = r"^(direct|nginx|gateway(?: x\d+)?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+(.*)$"
    for match in re.finditer(pattern, output, re.MULTILINE):
        results[match.group(1)] = {
            "rps": float(match.group(2)), "p50_ms": float(match.group(3)), "p99_ms": float(match.group(4)),
            "non_2xx": int(match.group(5)), "socket_errors": match.group(6).strip(),
        }
    return results


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
    return values


def parse_rates(output: str) -> dict[str, float]:
    """Map each case of bench_movies.py or bench_webclient.py to its requests per second."""
    rates = {}
    for match in re.finditer(r"^GET /(?:api/)?movies/\{id\} (.+?): ([\d,]+) requests/s", output, re.MULTILINE):
        rates[match.group(1)] = float(match.group(2).replace(",", ""))
    return rates


# -- measurements and goals --------------------------------------------------------------

def ratio_row(number: str, name: str, value: float | None, reference_name: str, reference: float | None,
              minimum: float | None, command: str, note: str = "") -> Measurement:
    row = Measurement(number, name, value, reference_name, reference, command=command, note=note)
    if minimum is not None:
        row.goal = f">= {minimum:g}"
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
    if minimum is None:
        row.status = "no goal"
    else:
        row.status = "PASS" if row.ratio >= minimum else "FAIL"
    return row


def not_measured(number: str, name: str, goal: str, reason: str) -> Measurement:
    return Measurement(number, name, goal=goal, status="not measured", note=reason)


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

    gateway = parse_gateway(outputs.get("gateway", ""))
    command = commands.get("gateway", "")

    def gateway_value(target: str, key: str) -> float | None:
        return gateway.get(target, {}).get(key)

    rows.append(ratio_row("2", "GET /movies/{id} through gateway, req/s", gateway_value("gateway", "rps"),
                          "direct to movies_srv req/s", gateway_value("direct", "rps"), 0.6, command))
    rows.append(ratio_row("2", "GET /movies/{id} through gateway, req/s", gateway_value("gateway", "rps"),
                          "through nginx req/s", gateway_value("nginx", "rps"), 0.6, command))
    rows.append(added_latency_row(gateway, command))

    signin = parse_signin(outputs.get("signin", ""))
    cost = signin.get("bcrypt_cost")
    rows.append(ratio_row("4", "full browser sign-ins/s", signin.get("signins"),
                          f"bcrypt verifications/s (cost {cost:g})" if cost else "bcrypt verifications/s",
                          signin.get("bcrypt"), 0.8, commands.get("signin", ""),
                          note="bcrypt runs on one thread per core, the sign-ins on one identity_srv process"))

    # TODO: measurement 5 needs client_credentials p99 latency while sign-ins keep
    # bcrypt busy, which no script in bench/ measures yet.
    rows.append(not_measured("5", "client_credentials p99 while sign-ins saturate bcrypt, / idle p99", "<= 3",
                             "no script measures token latency under sign-in load yet"))

    rows.append(ratio_row("6", "client_credentials tokens/s, RS256, 2 workers",
                          tokens.get("identity_srv RS256, 2 workers"), "1 worker tokens/s",
                          tokens.get("identity_srv client_credentials RS256"), 1.6, commands.get("tokens", "")))
    rows.append(ratio_row("6", "GET /movies/{id} through gateway, 2 workers, req/s",
                          gateway_value("gateway x2", "rps"), "1 worker gateway req/s",
                          gateway_value("gateway", "rps"), 1.6, command,
                          note="one movies_srv process behind both gateways"))

    # TODO: measurement 7 needs the peak RSS of every service process, which the
    # scripts start and stop themselves without reporting it.
    rows.append(not_measured("7", "peak resident memory per service process under load", "<= 150 MB",
                             "the scripts do not report the memory of the processes they start"))

    rows.extend(trap_rows(outputs, commands))
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
    """Build the rows for the known traps that an existing script can show."""
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
    # TODO: the other known traps (JWKS fetched per request, a new
    # downstream connection per proxied request, Redis round trips, the hiredis
    # parser, bcrypt on client secrets) have no measurement of their own yet.
    # The RS256 token rate of measurement 1 shows whether a PEM key is parsed per signature.
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


def write_report(rows: list[Measurement], machine: dict, scenarios: dict[str, dict], plots: list[str],
                 plot_note: str, seconds: int) -> None:
    (BENCH / "report.json").write_text(json.dumps({
        "machine": machine, "seconds_per_measurement": seconds, "scenarios": scenarios,
        "measurements": [asdict(row) for row in rows], "plots": plots, "plot_note": plot_note,
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
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        lines.append(f"| {row.number} | {row.name} | {format_number(row.value)} | {row.reference_name or '-'} "
                     f"| {format_number(row.reference)} | {ratio} | {row.goal or '-'} | {row.status} |")
    lines += ["", "Notes:", ""]
    for row in rows:
        if row.note:
            lines.append(f"- {row.number} {row.name}: {row.note}")
    lines += ["", "Commands (run from the repository root):", ""]
    for name, scenario in scenarios.items():
        lines.append(f"- {name}: `{scenario['command']}` ({scenario['outcome']}, {scenario['elapsed_s']:.0f} s)")
    lines += ["", "Plots:", ""]
    lines += [f"- ![{plot}]({plot})" for plot in plots] or [f"- {plot_note}"]
    (BENCH / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_plots(outputs: dict[str, str]) -> tuple[list[str], str]:
    """Plot p50 and p99 of each gateway target beside its references, if matplotlib is installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return [], "no plots: matplotlib is not installed (pip install -e '.[bench]')"
    gateway = parse_gateway(outputs.get("gateway", ""))
    if not gateway:
        return [], "no plots: the gateway scenario printed no latencies"
    # NOTE: the scripts print only p50 and p99, so the plot shows those two
    # points per target, not the full latency distribution.
    targets = list(gateway)
    figure, axes = pyplot.subplots(figsize=(7, 4))
    width = 0.35
    positions = range(len(targets))
    axes.bar([p - width / 2 for p in positions], [gateway[t]["p50_ms"] for t in targets], width, label="p50")
    axes.bar([p + width / 2 for p in positions], [gateway[t]["p99_ms"] for t in targets], width, label="p99")
    axes.set_xticks(list(positions), targets)
    axes.set_ylabel("latency, ms")
    axes.set_title("GET /movies/{id}: gateway beside direct and nginx")
    axes.legend()
    figure.tight_layout()
    figure.savefig(BENCH / "latency-gateway.png", dpi=100)
    pyplot.close(figure)
    return ["latency-gateway.png"], ("only the gateway scenario has a plot, because the other scripts "
                                     "print rates without latencies")


def main() -> int:
    scenarios = build_scenarios()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10,
                        help="measured seconds per target in each script (default 10, about 3 minutes in all on 2 cores)")
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
    write_report(rows, machine_description(), summary, plots, plot_note, args.seconds)
    print((BENCH / "report.md").read_text(encoding="utf-8"))
    failed = [name for name, scenario in summary.items() if scenario["outcome"] != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
