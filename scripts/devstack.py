"""Run the whole stack on this machine: what `make run` calls.

Starts a private redis-server and SecantusDB where REDIS_URL / MONGO_URL are unset
(on the ports of `redis.url` and `mongo.url` in conf/common.toml, data under
.run/), runs the seed scripts, starts the four services, prints their URLs and
waits. Ctrl-C or SIGTERM stops everything it started, in reverse order, and
nothing else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from servicekit.embedded import (  # noqa: E402
    EmbeddedError, EmbeddedServer, die_with_parent, pid_alive, redis_server, secantus_server,
)
from servicekit.settings import SettingsError, load_raw  # noqa: E402

# Data, logs and the PID file; DEVSTACK_RUN_DIR moves them (the tests do).
RUN_DIR = Path(os.environ.get("DEVSTACK_RUN_DIR", ROOT / ".run"))
PID_FILE = RUN_DIR / "devstack.pid"

# (package, port variable, default port), in start order.
SERVICES = [
    ("identity_srv", "IDENTITY_PORT", 5005),
    ("movies_srv", "MOVIES_PORT", 5001),
    ("gateway_srv", "GATEWAY_PORT", 5010),
    ("webclient_srv", "WEBCLIENT_PORT", 5002),
]

# Seed scripts run after the stores are up and before the services start. A script
# that does not exist yet is skipped.
SEED_SCRIPTS = ["seed_clients.py", "seed_users.py", "seed_movies.py"]

READY_TIMEOUT = 60.0


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def claim_pid_file() -> None:
    """Refuse to start beside a running devstack; remove a stale PID file."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    if PID_FILE.exists():
        try:
            pid = int(PID_FILE.read_text().strip())
        except ValueError:
            pid = 0
        if pid and pid != os.getpid() and pid_alive(pid):
            raise SystemExit(f"[make run] already running as process {pid}: press Ctrl-C in its "
                             f"terminal or run `kill {pid}`")
        say(f"removed a stale PID file ({PID_FILE}, process {pid} is gone)")
    PID_FILE.write_text(str(os.getpid()))


def loopback_port(url: str, variable: str) -> int:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") or parts.port is None:
        raise SystemExit(f"[make run] {url} in conf/common.toml is not a loopback address with a port; "
                         f"set {variable} to use that server, or put a local port there")
    return parts.port


def start_stores(env: dict[str, str], started: list[EmbeddedServer]) -> None:
    try:
        raw = load_raw("identity.toml", "IDENTITY", env)
    except SettingsError as exc:
        raise SystemExit(f"[make run] configuration error: {exc}") from None
    if not env.get("REDIS_URL"):
        port = loopback_port(raw["redis"]["url"], "REDIS_URL")
        server = redis_server(port, RUN_DIR / "redis", persistent=True)
        say(f"starting redis-server on port {port} (data in {RUN_DIR / 'redis'})")
        server.start()
        started.append(server)
        env["REDIS_URL"] = server.url
    else:
        say("using REDIS_URL from the environment")
    if not env.get("MONGO_URL"):
        port = loopback_port(raw["mongo"]["url"], "MONGO_URL")
        server = secantus_server(port, RUN_DIR / "secantusdb")
        say(f"starting SecantusDB on port {port} (data in {RUN_DIR / 'secantusdb'})")
        server.start(timeout=60.0)
        started.append(server)
        env["MONGO_URL"] = server.url
    else:
        say("using MONGO_URL from the environment")


def run_seeds(env: dict[str, str]) -> None:
    for name in SEED_SCRIPTS:
        script = ROOT / "scripts" / name
        if not script.exists():
            continue
        say(f"seeding: {name}")
        result = subprocess.run([sys.executable, str(script)], env=env, cwd=ROOT)
        if result.returncode != 0:
            raise SystemExit(f"[make run] {name} failed with status {result.returncode}")


def wait_ready(url: str, process: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"[make run] {name} exited with status {process.returncode}; "
                             f"its log is above")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"[make run] {name} was not ready at {url}/readyz within {READY_TIMEOUT:.0f}s")


def link_services(env: dict[str, str]) -> None:
    """Point the services at each other's ports when a port variable moves one of them."""
    if env.get("IDENTITY_PORT"):
        env.setdefault("ISSUER", f"http://localhost:{env['IDENTITY_PORT']}")
    if env.get("MOVIES_PORT"):
        env.setdefault("GATEWAY_MOVIES_URL", f"http://localhost:{env['MOVIES_PORT']}")
    if env.get("GATEWAY_PORT"):
        env.setdefault("WEBCLIENT__GATEWAY__URL", f"http://localhost:{env['GATEWAY_PORT']}")
    if env.get("WEBCLIENT_PORT"):
        public_url = f"http://localhost:{env['WEBCLIENT_PORT']}"
        env.setdefault("WEBCLIENT__OIDC__PUBLIC_URL", public_url)
        say(f"webclient_srv moved to {public_url}: sign-in works once conf/clients.toml lists "
            f"{public_url}/signin-oidc and {public_url}/signout-callback-oidc for movies_mvc_client")


def start_services(env: dict[str, str], children: list[tuple[str, subprocess.Popen]]) -> list[str]:
    lines = []
    for package, variable, default in SERVICES:
        port = int(env.get(variable, default))
        say(f"starting {package} on port {port}")
        process = subprocess.Popen([sys.executable, "-m", package], env=env, cwd=ROOT,
                                   preexec_fn=die_with_parent, start_new_session=True)
        children.append((package, process))
        url = f"http://localhost:{port}"
        wait_ready(url, process, package)
        lines.append(f"  {package:<14} {url}")
    return lines


def stop_all(children: list[tuple[str, subprocess.Popen]], stores: list[EmbeddedServer]) -> None:
    for name, process in reversed(children):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for name, process in reversed(children):
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop within 15s; killing it")
            process.kill()
            process.wait()
    for server in reversed(stores):
        say(f"stopping {server.name}")
        server.stop()


def main() -> int:
    claim_pid_file()
    env = dict(os.environ)
    stores: list[EmbeddedServer] = []
    children: list[tuple[str, subprocess.Popen]] = []
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    # Installed for SIGINT too: a shell that starts a job in the background makes
    # it ignore SIGINT, and Python then leaves Ctrl-C ignored.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        start_stores(env, stores)
        run_seeds(env)
        link_services(env)
        lines = start_services(env, children)
        say("the stack is up:")
        print("\n".join(lines), flush=True)
        say("press Ctrl-C to stop everything")
        while True:
            for name, process in children:
                if process.poll() is not None:
                    say(f"{name} exited with status {process.returncode}; stopping the stack")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping")
        return 0
    except EmbeddedError as exc:
        say(str(exc))
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_all(children, stores)
        PID_FILE.unlink(missing_ok=True)
        say("stopped")


if __name__ == "__main__":
    sys.exit(main())
