"""Helpers for fault tests: background traffic that records every status it gets."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import requests


class Traffic:
    """Call each of `calls` in a loop on its own thread and count the statuses by phase.

    A call returns a status; a connection error counts as status 0. `phase` is a
    label the test moves on ("before", "down", "after"), so each status is counted
    under the phase in which its request started.
    """

    def __init__(self, calls: dict[str, Callable[[], int]], pause: float = 0.05):
        self.calls = calls
        self.pause = pause
        self.phase = "before"
        self.counts: dict[str, Counter] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(name, call), daemon=True)
                         for name, call in calls.items()]

    def _loop(self, name: str, call: Callable[[], int]) -> None:
        while not self._stop.is_set():
            phase = self.phase
            try:
                status = call()
            except requests.RequestException:
                status = 0
            with self._lock:
                self.counts.setdefault(phase, Counter())[(name, status)] += 1
            time.sleep(self.pause)

    def start(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def total(self, phase: str) -> int:
        with self._lock:
            return sum(self.counts.get(phase, Counter()).values())

    def next_phase(self, phase: str, settle: float = 1.0) -> None:
        """Label new requests with `phase`, then wait `settle` seconds for older ones to finish."""
        self.phase = phase
        time.sleep(settle)

    def statuses(self, phase: str, name: str | None = None) -> set[int]:
        with self._lock:
            return {status for (call, status), _ in self.counts.get(phase, Counter()).items()
                    if name is None or call == name}
