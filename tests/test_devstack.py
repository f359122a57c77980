"""`make run`'s script: the whole stack up on embedded stores, and nothing left after Ctrl-C."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from servicekit.embedded import free_port, pid_alive
from tests.support.processes import ROOT, get_status

PORT_VARIABLES = ["IDENTITY_PORT", "MOVIES_PORT", "GATEWAY_PORT", "WEBCLIENT_PORT"]

pytestmark = pytest.mark.slow


class Devstack:
    """scripts/devstack.py in a process of its own, with its output collected."""

    def __init__(self, env: dict[str, str], ignore_sigint: bool = False):
        self.output: list[str] = []
        # A shell's background job starts with SIGINT ignored; `ignore_sigint` does the same.
        ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
        self.process = subprocess.Popen(
            [sys.executable, "scripts/devstack.py"], cwd=ROOT, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=ignore)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)

    def text(self) -> str:
        return "".join(self.output)

    def wait_for_line(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {needle!r} in the output:\n{self.text()}")

    def children(self) -> list[int]:
        result = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
                                capture_output=True, text=True)
        return [int(pid) for pid in result.stdout.split()]

    def interrupt(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code


@pytest.fixture
def stack_env(tmp_path) -> dict[str, str]:
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    common = (conf / "common.toml").read_text()
    common = re.sub(r"redis://127\.0\.0\.1:\d+/0", f"redis://127.0.0.1:{free_port()}/0", common)
    common = re.sub(r"mongodb://127\.0\.0\.1:\d+/", f"mongodb://127.0.0.1:{free_port()}/", common)
    (conf / "common.toml").write_text(common)
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "MONGO_URL")}
    env.update({"CONF_DIR": str(conf), "DEVSTACK_RUN_DIR": str(tmp_path / "run")})
    for variable in PORT_VARIABLES:
        env[variable] = str(free_port())
    return env


def test_stack_up_ready_and_stopped(stack_env):
    stack = Devstack(stack_env)
    try:
        stack.wait_for_line("press Ctrl-C to stop everything", 120)
        for variable in PORT_VARIABLES:
            url = f"http://localhost:{stack_env[variable]}"
            assert url in stack.text()
            assert get_status(f"{url}/readyz")[0] == 200
        children = stack.children()
        # Four services, redis-server and SecantusDB.
        assert len(children) == 6
    finally:
        code = stack.interrupt()
    assert code == 0
    assert [pid for pid in children if pid_alive(pid)] == []
    assert not (Path(stack_env["DEVSTACK_RUN_DIR"]) / "devstack.pid").exists()
    assert "[make run] stopped" in stack.text()


def test_second_run_and_stale_pid_file(stack_env):
    run_dir = Path(stack_env["DEVSTACK_RUN_DIR"])
    run_dir.mkdir(parents=True)
    # A PID that no process has: the largest the kernel would give, plus one.
    stale = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    (run_dir / "devstack.pid").write_text(str(stale))
    outputs = []
    for _ in range(2):
        stack = Devstack(stack_env)
        try:
            stack.wait_for_line("press Ctrl-C to stop everything", 120)
        finally:
            assert stack.interrupt() == 0
        outputs.append(stack.text())
    stale_message = f"removed a stale PID file ({run_dir / 'devstack.pid'}, process {stale} is gone)"
    assert stale_message in outputs[0]
    assert stale_message not in outputs[1]


def test_refuses_to_start_twice(stack_env):
    first = Devstack(stack_env)
    try:
        first.wait_for_line("press Ctrl-C to stop everything", 120)
        second = subprocess.run([sys.executable, "scripts/devstack.py"], cwd=ROOT, env=stack_env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert second.stderr.strip() == (
            f"[make run] already running as process {first.process.pid}: press Ctrl-C in its "
            f"terminal or run `kill {first.process.pid}`")
    finally:
        assert first.interrupt() == 0


def test_busy_store_port_is_reported(stack_env):
    conf = Path(stack_env["CONF_DIR"]) / "common.toml"
    port = int(re.search(r"redis://127\.0\.0\.1:(\d+)/0", conf.read_text()).group(1))
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        result = subprocess.run([sys.executable, "scripts/devstack.py"], cwd=ROOT, env=stack_env,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert (f"port {port} for the embedded redis is already in use: stop the program on it, "
            f"or point the services at it with REDIS_URL") in result.stdout
    assert "starting SecantusDB" not in result.stdout


def test_ctrl_c_works_in_background_job(stack_env):
    stack = Devstack(stack_env, ignore_sigint=True)
    try:
        stack.wait_for_line("press Ctrl-C to stop everything", 120)
        children = stack.children()
    finally:
        code = stack.interrupt()
    assert code == 0
    assert [pid for pid in children if pid_alive(pid)] == []
