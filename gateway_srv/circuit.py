"""Per-route circuit breakers.

A breaker counts consecutive failed requests: connection refused or reset, or a
timeout. A downstream's own 5xx status is a response and does not count. After
`failures` of them it opens, and the route returns 503 at once for `open_seconds`.
Then it lets one trial request through (half-open): success closes it, failure
opens it again for another `open_seconds`.

State is per gateway process, like Ocelot's and Envoy's outlier detection: it
describes what this process sees of its downstreams.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from .routes import CircuitBreakerPolicy

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    policy: CircuitBreakerPolicy
    clock: Callable[[], float] = time.monotonic
    state: str = CLOSED
    consecutive_failures: int = 0
    opened_at: float = 0.0
    trial_in_flight: bool = False

    def retry_after(self) -> int:
        """Return the whole seconds until a trial request is let through (at least 1)."""
        remaining = self.opened_at + self.policy.open_seconds - self.clock()
        return max(1, math.ceil(remaining))

    def try_acquire(self) -> bool:
        """Return True if a request may go downstream now.

        A caller that got True must call exactly one of `record_success`,
        `record_failure` or `release`.
        """
        if self.state == OPEN and self.clock() >= self.opened_at + self.policy.open_seconds:
            self.state = HALF_OPEN
        if self.state == CLOSED:
            return True
        if self.state == HALF_OPEN and not self.trial_in_flight:
            self.trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self.state = CLOSED
        self.consecutive_failures = 0
        self.trial_in_flight = False

    def record_failure(self) -> None:
        self.consecutive_failures += 1
        if self.state == HALF_OPEN or self.consecutive_failures >= self.policy.failures:
            self.state = OPEN
            self.opened_at = self.clock()
        self.trial_in_flight = False

    def release(self) -> None:
        """End a request that produced no verdict on the downstream (the client left)."""
        self.trial_in_flight = False

    def snapshot(self) -> dict:
        info = {"state": self.state, "consecutive_failures": self.consecutive_failures}
        if self.state == OPEN:
            info["retry_after"] = self.retry_after()
        return info
