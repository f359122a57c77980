"""Run a service as a real `python -m <package>` process for a test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from servicekit.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]

# Every log file a ServiceProcess wrote to in this test session, for the check
# in tests/conftest.py that no secret reached a log.
LOG_PATHS: list[Path] = []

PORT_VARIABLES = {
    "identity_srv": "IDENTITY_PORT",
    "movies_srv": "MOVIES_PORT",
    "webclient_srv": "WEBCLIENT_PORT",
    "gateway_srv": "GATEWAY_PORT",
}


def get_status(url: str, timeout: float = 3.0) -> tuple[int, bytes]:
    """GET `url` and return (status, body), also for 4xx and 5xx responses."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(predicate, timeout: float, interval: float = 0.1, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@dataclass
class ServiceProcess:
    """One service process with its own port; its stderr goes to `log_path`."""

    package: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> "ServiceProcess":
        env = {**os.environ, **self.env, PORT_VARIABLES[self.package]: str(self.port)}
        prefix = PORT_VARIABLES[self.package].removesuffix("_PORT")
        env.setdefault(f"{prefix}__HTTP__HOST", "127.0.0.1")
        # One process per service unless a test sets more, because the default of
        # one per core would multiply the processes the suite starts.
        env.setdefault(f"{prefix}__HTTP__WORKERS", "1")
        self._log = open(self.log_path, "ab")
        if self.log_path not in LOG_PATHS:
            LOG_PATHS.append(self.log_path)
        self.process = subprocess.Popen([sys.executable, "-m", self.package], env=env, cwd=ROOT,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        if wait:
            wait_for(self._healthy, 20, message=f"{self.package} /healthz")
        return self

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.package} exited with {self.process.returncode}:\n{self.log()}")
        try:
            return get_status(f"{self.url}/healthz", timeout=1)[0] == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> int:
        """Send SIGTERM and return the exit status; kill and fail if it hangs."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"{self.package} did not stop within {timeout}s of SIGTERM")
        self._log.close()
        code = self.process.returncode
        self.process = None
        return code
