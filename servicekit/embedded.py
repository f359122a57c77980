"""Start and stop the embedded stores for development and tests.

`make run` and the test fixtures use these to run a private `redis-server` and a
SecantusDB server (a MongoDB wire-protocol server that installs from PyPI) as child
processes on ports of their own. Production points `REDIS_URL` and `MONGO_URL` at
real deployments and starts nothing from here.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1


class EmbeddedError(Exception):
    """An embedded server could not start; the message gives the cause and the fix."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def die_with_parent() -> None:
    # Linux only: the child gets SIGTERM when the process that started it dies, so a
    # killed `make run` or test session leaves no store running.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _mongo_answers(port: int) -> bool:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client = MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=500,
                         connectTimeoutMS=500, directConnection=True)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


@dataclass
class EmbeddedServer:
    """One store server run as a child process, with its data and log under `data_dir`."""

    name: str
    port: int
    data_dir: Path
    argv: list[str]
    kind: str  # "redis" or "mongodb"
    process: subprocess.Popen | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        if self.kind == "redis":
            return f"redis://127.0.0.1:{self.port}/0"
        return f"mongodb://127.0.0.1:{self.port}/"

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    def answers(self) -> bool:
        return _redis_answers(self.port) if self.kind == "redis" else _mongo_answers(self.port)

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it responds; raise EmbeddedError otherwise."""
        if port_in_use(self.port):
            raise EmbeddedError(
                f"port {self.port} for the embedded {self.name} is already in use: stop the "
                f"program on it, or point the services at it with "
                f"{'REDIS_URL' if self.kind == 'redis' else 'MONGO_URL'}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.argv, cwd=self.data_dir, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, preexec_fn=die_with_parent, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedError(f"{self.name} exited with status {self.process.returncode}; "
                                    f"see {self.log_path}")
            if self.answers():
                return
            time.sleep(0.1)
        self.stop()
        raise EmbeddedError(f"{self.name} did not respond on port {self.port} within {timeout:.0f}s; "
                            f"see {self.log_path}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server with SIGTERM, then SIGKILL after `timeout` seconds."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


def redis_server(port: int, data_dir: Path, persistent: bool) -> EmbeddedServer:
    """Describe a private redis-server; `persistent` turns on the append-only file."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise EmbeddedError("redis-server is not on the PATH: install it (apt-get install redis-server) "
                            "or set REDIS_URL to an existing server")
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
            "--save", "", "--appendonly", "yes" if persistent else "no",
            "--daemonize", "no", "--protected-mode", "yes", "--logfile", ""]
    return EmbeddedServer("redis", port, data_dir, argv, "redis")


def secantus_server(port: int, data_dir: Path) -> EmbeddedServer:
    """Describe a SecantusDB server storing its data under `data_dir/data`."""
    binary = Path(sys.executable).with_name("secantusd-py")
    if not binary.exists():
        found = shutil.which("secantusd-py")
        if found is None:
            raise EmbeddedError("secantusd-py is not installed: run `pip install secantusdb` in the "
                                "project's environment or set MONGO_URL to a MongoDB server")
        binary = Path(found)
    argv = [str(binary), "--host", "127.0.0.1", "--port", str(port),
            "--storage-path", str(data_dir / "data"), "--log-level", "WARNING"]
    return EmbeddedServer("secantusdb", port, data_dir, argv, "mongodb")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
