"""Helpers shared by the bench/ scripts: latency percentiles, peak memory and CPU time.

Every script prints its results as text that bench/suite.py parses. The lines
written here have fixed formats:

    latency-us <target>: 1=812 5=901 ... 99.99=20480 max=31002
    peak-rss <service> pid=<pid> role=<main|worker> mb=<MB>
    cpu-s <target>: <process>=<seconds> ...

Latencies are in microseconds, memory in MB (2**20 bytes) and CPU time in seconds.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

# Percentiles printed for every latency distribution, besides the maximum.
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99)

# wrk calls `done` once after the run with the latency histogram of all threads.
# `latency:percentile(p)` and `latency.max` are in microseconds (wrk 4.1).
WRK_DONE_LUA = """
done = function(summary, latency, requests)
  local parts = {}
  for _, p in ipairs({PERCENTILES}) do
    parts[#parts + 1] = string.format("%g=%d", p, latency:percentile(p))
  end
  parts[#parts + 1] = string.format("max=%d", latency.max)
  io.write("latency-us: " .. table.concat(parts, " ") .. "\\n")
  local e = summary.errors
  io.write(string.format("wrk-summary: requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
end
""".replace("PERCENTILES", ", ".join(f"{p:g}" for p in PERCENTILES))

_LATENCY_LINE = re.compile(r"^latency-us(?: (?P<target>.+?))?: (?P<values>.+)$", re.MULTILINE)
_SUMMARY_LINE = re.compile(r"^wrk-summary: (.+)$", re.MULTILINE)


def write_wrk_script(path: Path, body: str = "") -> Path:
    """Write a wrk Lua script: `body` (request set-up) followed by the latency `done` hook."""
    path.write_text(body + "\n" + WRK_DONE_LUA, encoding="utf-8")
    return path


def parse_wrk_latency(output: str) -> dict[str, float]:
    """Return the percentiles that the `done` hook printed, in microseconds, keyed "50", "99.9", "max"."""
    match = _LATENCY_LINE.search(output)
    if match is None:
        raise ValueError(f"wrk printed no latency-us line; is the Lua done hook loaded?\n{output}")
    return parse_distribution(match.group("values"))


def parse_wrk_summary(output: str) -> dict[str, int]:
    """Return the request and error counts that the `done` hook printed."""
    match = _SUMMARY_LINE.search(output)
    if match is None:
        raise ValueError(f"wrk printed no wrk-summary line:\n{output}")
    return {key: int(value) for key, value in (item.split("=") for item in match.group(1).split())}


def parse_distribution(text: str) -> dict[str, float]:
    return {key: float(value) for key, value in (item.split("=") for item in text.split())}


def parse_latency_lines(output: str) -> dict[str, dict[str, float]]:
    """Map each target named in a `latency-us <target>:` line to its percentiles in microseconds."""
    return {match.group("target"): parse_distribution(match.group("values"))
            for match in _LATENCY_LINE.finditer(output) if match.group("target")}


def percentiles_of(samples: list[float]) -> dict[str, float]:
    """Return PERCENTILES and the maximum of latencies given in seconds, in microseconds.

    Uses the nearest-rank definition, as wrk's histogram does.
    """
    if not samples:
        raise ValueError("no latency samples: no request completed")
    ordered = sorted(samples)
    result = {}
    for p in PERCENTILES:
        rank = max(math.ceil(p / 100 * len(ordered)), 1)
        result[f"{p:g}"] = ordered[rank - 1] * 1e6
    result["max"] = ordered[-1] * 1e6
    return result


def latency_line(target: str, distribution: dict[str, float]) -> str:
    return f"latency-us {target}: " + " ".join(f"{key}={value:.0f}" for key, value in distribution.items())


# -- processes ---------------------------------------------------------------------------

def child_pids(pid: int) -> list[int]:
    """Return the direct children of `pid`, read from /proc/<pid>/task/*/children (Linux 3.5+)."""
    children: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return children
    for task in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
        except OSError:
            continue
        children.extend(int(item) for item in text.split())
    return children


def peak_rss_mb(pid: int) -> float | None:
    """Return VmHWM of `pid` in MB, or None when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # the kernel reports kB
    except OSError:
        return None
    return None


def peak_memory_lines(service: str, pid: int) -> list[str]:
    """Return one `peak-rss` line for the process `pid` and one for each of its children.

    A service with workers forks them from its main process, so the children are
    its workers.
    """
    lines = []
    for role, process in [("main", pid), *(("worker", child) for child in child_pids(pid))]:
        peak = peak_rss_mb(process)
        if peak is not None:
            lines.append(f"peak-rss {service} pid={process} role={role} mb={peak:.1f}")
    return lines


def print_peak_memory(service: str, pid: int) -> None:
    for line in peak_memory_lines(service, pid):
        print(line, flush=True)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """Return the user and system CPU time of `pid` in seconds (all its threads), or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in field 2 may contain spaces, so split after its closing bracket.
    fields = text.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def process_labels(named: dict[str, int]) -> dict[str, int]:
    """Expand {name: main pid} to {label: pid} with each process's children as `name worker <pid>`."""
    labels = {}
    for name, pid in named.items():
        labels[name] = pid
        for child in child_pids(pid):
            labels[f"{name} worker {child}"] = child
    return labels


def cpu_snapshot(labels: dict[str, int]) -> dict[str, float]:
    return {label: seconds for label, pid in labels.items() if (seconds := cpu_seconds(pid)) is not None}


def children_cpu_seconds() -> float:
    """Return the CPU time of this process's terminated and waited-for children, in seconds."""
    times = os.times()
    return times.children_user + times.children_system


def tcp_active_opens() -> int:
    """Return ActiveOpens from /proc/net/snmp: TCP connect() calls in this network namespace."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Tcp:")]
    header, values = lines[0], lines[1]
    return int(values[header.index("ActiveOpens")])
