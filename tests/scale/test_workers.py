"""A service run with `--workers 2`: both workers serve, a dead one is replaced,
and SIGTERM to the main process stops every worker."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from servicekit.embedded import free_port
from tests.support.processes import ROOT, get_status, wait_for

pytestmark = pytest.mark.slow

LISTENING = re.compile(r"movies_srv listening on http://127\.0\.0\.1:\d+ \(pid (\d+),")


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _server_side_inodes(port: int, client_ports: set[int]) -> dict[int, str]:
    """Map each client port to the inode of the server's end of that connection."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        remote_port = int(fields[2].split(":")[1], 16)
        if local_port == port and remote_port in client_ports:
            found[remote_port] = fields[9]
    return found


def _connections_per_pid(port: int, worker_pids: list[int], connections: int = 40) -> Counter[int]:
    """Open connections back to back, make a request on each, and count them by the pid that accepted them."""
    clients = []
    try:
        for _ in range(connections):
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            clients.append(client)
        for client in clients:
            assert client.recv(64).startswith(b"HTTP/1.1 200")
        client_ports = {client.getsockname()[1] for client in clients}
        server_ends = _server_side_inodes(port, client_ports)
        assert len(server_ends) == connections
        owners = {pid: _socket_inodes(pid) for pid in worker_pids}
        return Counter(pid for inode in server_ends.values() for pid, inodes in owners.items() if inode in inodes)
    finally:
        for client in clients:
            client.close()


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return status != "Z"


def start_two_workers(store_env: dict[str, str], log_path: Path,
                      **settings: str) -> tuple[subprocess.Popen, list[int], dict[str, str], int]:
    """Start movies_srv with two workers; return its main process, the worker pids, its environment and port."""
    port = free_port()
    env = {**os.environ, **store_env, "MOVIES_PORT": str(port), "MOVIES__HTTP__HOST": "127.0.0.1", **settings}
    with log_path.open("ab") as log:
        main = subprocess.Popen([sys.executable, "-m", "movies_srv", "--workers", "2"], env=env, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(LISTENING.findall(log_path.read_text())) == 2, 30, message="two workers")
    except BaseException:
        main.kill()
        main.wait()
        raise
    workers = [int(pid) for pid in LISTENING.findall(log_path.read_text())]
    return main, workers, env, port


def test_two_workers_serve_and_stop(store_env, tmp_path):
    log_path = tmp_path / "movies.log"
    main, workers, env, port = start_two_workers(store_env, log_path)
    try:
        assert main.pid not in workers
        assert get_status(f"http://127.0.0.1:{port}/healthz")[0] == 200

        # Connections opened back to back are spread over both workers, not taken
        # by the first to wake.
        per_worker = _connections_per_pid(port, workers)
        assert sorted(per_worker) == sorted(workers)
        assert min(per_worker.values()) >= 8, per_worker

        # A second copy of the service finds the port in use.
        second = subprocess.run([sys.executable, "-m", "movies_srv", "--workers", "2"], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=30, check=False)
        assert second.returncode == 1
        assert f"port {port} on 127.0.0.1 is already in use" in second.stderr

        # A worker killed outright is replaced, and the port keeps accepting connections meanwhile.
        os.kill(workers[0], signal.SIGKILL)
        for _ in range(10):
            assert get_status(f"http://127.0.0.1:{port}/healthz")[0] == 200
        wait_for(lambda: len(LISTENING.findall(log_path.read_text())) == 3, 30, message="a replacement worker")
        replacement = int(LISTENING.findall(log_path.read_text())[2])
        assert f"worker pid {workers[0]} was killed by signal SIGKILL; starting a replacement" in log_path.read_text()
        workers = [workers[1], replacement]

        main.send_signal(signal.SIGTERM)
        assert main.wait(30) == 0
    finally:
        if main.poll() is None:
            main.kill()
            main.wait()
    text = log_path.read_text()
    assert text.count("movies_srv stopped\n") == 2
    assert "movies_srv stopped all workers" in text
    for pid in workers:
        assert not _alive(pid)


def test_port_taken_before_fork(store_env, tmp_path):
    """The main process binds the port once, so a taken port fails before any worker starts."""
    port = free_port()
    env = {**os.environ, **store_env, "MOVIES_PORT": str(port), "MOVIES__HTTP__HOST": "127.0.0.1",
           "MOVIES__HTTP__WORKERS": "2"}
    taken = socket.socket()
    taken.bind(("127.0.0.1", port))
    taken.listen()
    try:
        result = subprocess.run([sys.executable, "-m", "movies_srv"], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=30, check=False)
    finally:
        taken.close()
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "starting 2 workers" not in result.stderr


def test_worker_start_failure_stops_all(redis_url, tmp_path):
    """Workers that cannot start make the main process exit with their status."""
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "MONGO_URL": f"mongodb://127.0.0.1:{free_port()}/",
           "IDENTITY_PORT": str(port), "IDENTITY__HTTP__HOST": "127.0.0.1", "IDENTITY__HTTP__WORKERS": "2"}
    result = subprocess.run([sys.executable, "-m", "identity_srv"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "starting 2 workers" in result.stderr
    assert "exited with status 1; stopping the other" in result.stderr
    assert "identity_srv stopped all workers" in result.stderr


def test_workers_option_rejects_negative(tmp_path):
    result = subprocess.run([sys.executable, "-m", "movies_srv", "--workers", "-1"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "--workers must be 0 or more, not -1" in result.stderr


def test_worker_that_does_not_stop_is_killed(store_env, tmp_path):
    """A worker that cannot handle SIGTERM (here: stopped with SIGSTOP) is killed after the stop timeout."""
    log_path = tmp_path / "movies.log"
    main, (stuck, other), _, _ = start_two_workers(store_env, log_path, MOVIES__HTTP__SHUTDOWN_GRACE="0.5")
    try:
        os.kill(stuck, signal.SIGSTOP)
        main.send_signal(signal.SIGTERM)
        # The grace of 0.5 s plus the margin the main process allows for closing stores.
        assert main.wait(30) == 1
    finally:
        if main.poll() is None:
            main.kill()
            main.wait()
    text = log_path.read_text()
    assert f"worker(s) pid {stuck} did not stop within 6s of SIGTERM; killing them" in text
    assert not _alive(stuck)
    assert not _alive(other)


def test_workers_stop_when_main_is_killed(store_env, tmp_path):
    log_path = tmp_path / "movies.log"
    main, workers, _, _ = start_two_workers(store_env, log_path)
    main.kill()
    main.wait()
    try:
        wait_for(lambda: not any(_alive(pid) for pid in workers), 15, message="the orphaned workers to stop")
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    text = log_path.read_text()
    for pid in workers:
        assert f"main process pid {main.pid} is gone; stopping worker pid {pid}" in text
    assert text.count("movies_srv stopped\n") == 2
