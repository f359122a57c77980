"""Load balancing across a downstream's hosts, with passive health checks.

A host that fails `unhealthy_after` requests in a row (connection refused or
reset, or a timeout) is skipped until a background probe of its `health_path`
returns a 2xx status. When every host is marked down, requests still go to all of them in
turn: a probe may lag behind a recovery, and the request then fails the same way
it would have failed anyway.

State is per gateway process: it describes what this process sees.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import aiohttp

from .routes import Downstream

log = logging.getLogger("gateway_srv.app")


@dataclass
class Host:
    url: str
    outstanding: int = 0
    consecutive_failures: int = 0
    healthy: bool = True

    def snapshot(self) -> dict:
        return {"url": self.url, "healthy": self.healthy, "outstanding": self.outstanding,
                "consecutive_failures": self.consecutive_failures}


@dataclass
class Balancer:
    """Picks a host of one downstream group for each attempt."""

    downstream: Downstream
    hosts: list[Host] = field(default_factory=list)
    _next: int = 0

    def __post_init__(self) -> None:
        self.hosts = [Host(url) for url in self.downstream.hosts]

    def pick(self, exclude: set[str] = frozenset()) -> Host:
        """Return the next host, skipping unhealthy ones and those in `exclude` when possible."""
        candidates = [h for h in self.hosts if h.healthy and h.url not in exclude]
        if not candidates:
            candidates = [h for h in self.hosts if h.url not in exclude] or self.hosts
        start = self._next % len(candidates)
        self._next += 1
        rotated = candidates[start:] + candidates[:start]
        if self.downstream.load_balancer == "least_outstanding":
            # min() keeps the first of equals, so ties fall back to round robin.
            return min(rotated, key=lambda host: host.outstanding)
        return rotated[0]

    def record_success(self, host: Host) -> None:
        host.consecutive_failures = 0

    def record_failure(self, host: Host) -> None:
        host.consecutive_failures += 1
        if host.healthy and host.consecutive_failures >= self.downstream.unhealthy_after:
            host.healthy = False
            log.warning("downstream %s host %s marked down after %d failed request(s)",
                        self.downstream.name, host.url, host.consecutive_failures)

    async def probe_unhealthy(self, session: aiohttp.ClientSession, timeout: float) -> None:
        """Probe each host marked down once, and mark it up when its health path returns 2xx."""
        for host in self.hosts:
            if host.healthy:
                continue
            try:
                async with session.get(host.url + self.downstream.health_path,
                                       timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                    await response.read()
                    up = 200 <= response.status < 300
            except (TimeoutError, aiohttp.ClientError):
                up = False
            if up:
                host.healthy = True
                host.consecutive_failures = 0
                log.info("downstream %s host %s is up again", self.downstream.name, host.url)


async def run_probes(balancers: list[Balancer], session: aiohttp.ClientSession, interval: float,
                     timeout: float) -> None:
    """Probe hosts marked down every `interval` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval)
        for balancer in balancers:
            await balancer.probe_unhealthy(session, timeout)
