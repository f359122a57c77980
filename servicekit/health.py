"""`GET /healthz` (the process is up) and `GET /readyz` (its stores respond).

Both also respond to HEAD with the same status and headers and no body.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from .stores import StoreUnavailable, Stores, ping_mongo, ping_redis
from .web import BaseHandler

# Seconds each store gets to respond to a readiness probe.
PROBE_TIMEOUT = 1.0

Check = Callable[[], Awaitable[None]]


def store_checks(stores: Stores) -> dict[str, Check]:
    """Return the readiness checks for the stores this service uses, by store name."""
    checks: dict[str, Check] = {"redis": lambda: ping_redis(stores.redis, PROBE_TIMEOUT)}
    if stores.mongo is not None:
        mongo = stores.mongo
        checks["mongodb"] = lambda: ping_mongo(mongo, PROBE_TIMEOUT)
    return checks


class HealthHandler(BaseHandler):
    """Liveness: returns 200 while the event loop runs, without touching any store."""

    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.write_json({"status": "ok", "service": self.settings["service"]})

    head = get


class ReadinessHandler(BaseHandler):
    """Readiness: 200 when every store answers, else 503 naming the ones that did not.

    A failing store is logged once when it goes down and once when it is back,
    not on every probe.
    """

    def initialize(self, checks: dict[str, Check], last_state: dict[str, bool]) -> None:
        self.checks = checks
        self.last_state = last_state

    async def _run(self, name: str, check: Check) -> bool:
        try:
            await check()
        except StoreUnavailable:
            return False
        return True

    async def get(self) -> None:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(name, self.checks[name]) for name in names))
        status = {name: ("ok" if ok else "unavailable") for name, ok in zip(names, results)}
        self._log_changes(dict(zip(names, results)))
        self.set_header("Cache-Control", "no-store")
        down = [name for name, ok in zip(names, results) if not ok]
        if not down:
            self.write_json({"status": "ready", "checks": status})
            return
        self.set_header("Retry-After", "5")
        self.write_json({
            "status": "unavailable",
            "checks": status,
            "error": "temporarily_unavailable",
            "error_description": f"{', '.join(down)} {'is' if len(down) == 1 else 'are'} unavailable",
        }, 503)

    head = get

    def _log_changes(self, results: dict[str, bool]) -> None:
        logger = logging.getLogger(f"{self.settings['service']}.app")
        for name, ok in results.items():
            previous = self.last_state.get(name, True)
            if previous and not ok:
                logger.warning("readiness: %s is unavailable", name)
            elif ok and not previous:
                logger.info("readiness: %s is available again", name)
            self.last_state[name] = ok
