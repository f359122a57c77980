"""A real Redis Cluster on loopback: six `redis-server` processes, three primaries
with one replica each, in a temporary directory."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from servicekit.embedded import free_port

NODES = 6


class LocalRedisCluster:
    def __init__(self, directory: Path):
        self.directory = directory
        self.ports: list[int] = []
        self.processes: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports[:3])

    def start(self, timeout: float = 30.0) -> LocalRedisCluster:
        for missing in ("redis-server", "redis-cli"):
            if shutil.which(missing) is None:
                raise RuntimeError(f"{missing} is not on the PATH: install the redis-tools package")
        for index in range(NODES):
            port, bus_port = free_port(), free_port()
            node_dir = self.directory / f"node{index}"
            node_dir.mkdir(parents=True)
            self.ports.append(port)
            self.processes.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-port", str(bus_port), "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no",
                 "--repl-diskless-sync-delay", "0",
                 "--dir", str(node_dir), "--logfile", str(node_dir / "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        for port in self.ports:
            self._wait(lambda port=port: redis.Redis(port=port).ping(), timeout)
        subprocess.run(["redis-cli", "--cluster", "create",
                        *(f"127.0.0.1:{port}" for port in self.ports),
                        "--cluster-replicas", "1", "--cluster-yes"],
                       check=True, capture_output=True, timeout=timeout)
        for port in self.ports:
            self._wait(lambda port=port: redis.Redis(port=port).cluster("info")["cluster_state"] == "ok", timeout)
        # A replica that never finished its first sync cannot take over a failed primary.
        for port in self.ports:
            self._wait(lambda port=port: self._in_sync(port), timeout)
        return self

    @staticmethod
    def _in_sync(port: int) -> bool:
        replication = redis.Redis(port=port).info("replication")
        return replication["role"] == "master" or replication.get("master_link_status") == "up"

    @staticmethod
    def _wait(probe, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if probe():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the local Redis Cluster did not come up in time")
            time.sleep(0.1)

    def kill_node(self, port: int) -> None:
        """Kill the node on `port` with SIGKILL, like a crashed host."""
        process = self.processes[self.ports.index(port)]
        process.kill()
        process.wait()

    def flush(self) -> None:
        for port in self.ports:
            client = redis.Redis(port=port)
            if client.info("replication")["role"] == "master":
                client.flushall()
            client.close()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
