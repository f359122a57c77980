"""Rotate identity_srv's signing keys now, or list them.

    python scripts/rotate_keys.py           announce a new key (it signs after keys.announce_period)
    python scripts/rotate_keys.py --list    print every stored key and its state

Reads the same settings as the service (conf/ and the environment, so MONGO_URL
and IDENTITY__KEYS__* apply). Rotating while a key is still announced creates
nothing, and neither does a rotation that races with another instance's: both
print why. Running instances pick the new key up at their next reload.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from identity_srv.app import key_store  # noqa: E402
from identity_srv.settings import load_settings  # noqa: E402
from servicekit.service import open_stores  # noqa: E402
from servicekit.settings import SettingsError  # noqa: E402
from servicekit.stores import UNAVAILABLE_ERRORS  # noqa: E402


def _utc(seconds: float | None) -> str:
    return "-" if seconds is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


async def run(list_only: bool) -> int:
    settings = load_settings()
    stores = open_stores(settings.common)
    try:
        store = key_store(settings, stores)
        await store.ensure_indexes()
        await store.advance()
        if not list_only:
            kid = await store.rotate()
            if kid is None:
                print("no new key: a key is already announced (or another instance just announced one)")
            else:
                print(f"announced key {kid}; it signs after {settings.keys.announce_period} s")
        for key in await store.list_keys():
            print(f"{key.kid}  generation={key.generation}  {key.algorithm}  {key.state:<9}  "
                  f"signs_from={_utc(key.activates_at)}  removed_at={_utc(key.removes_at)}")
    finally:
        await stores.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Rotate or list identity_srv's signing keys.")
    parser.add_argument("--list", action="store_true", help="list the stored keys without rotating")
    args = parser.parse_args()
    try:
        return asyncio.run(run(args.list))
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except UNAVAILABLE_ERRORS as exc:
        print(f"MongoDB is unavailable ({type(exc).__name__}): check MONGO_URL", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
