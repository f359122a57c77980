"""Create or update users in identity_srv's database from a TOML or JSON file.

    python scripts/seed_users.py                      # the demo users in conf/users.toml
    python scripts/seed_users.py --file users.json    # your own list

The file contains `users`, a list of tables with `username`, `password`, optional
`sub` and optional `claims` (OpenID Connect standard claims plus `role`, a list).
A user that exists (same username, ignoring case) is updated and keeps its
subject. Passwords are hashed with bcrypt; this script never prints one.
Exits 1 if any entry was rejected, after seeding the valid ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from identity_srv.passwords import PasswordHasher  # noqa: E402
from identity_srv.settings import load_settings  # noqa: E402
from identity_srv.users import STANDARD_CLAIMS, UserStore  # noqa: E402
from servicekit.settings import Reader, SettingsError, find_conf_dir, load_raw  # noqa: E402
from servicekit.stores import UNAVAILABLE_ERRORS, create_mongo  # noqa: E402

DEMO_FILE = "users.toml"
MAX_USERNAME_LENGTH = 64
# Passwords in files other than the demo file must be at least this long.
MIN_PASSWORD_LENGTH = 8


def read_users(path: Path) -> list[Any]:
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read {path}: {exc}") from None
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, list):
        raise SystemExit(f"{path} has no `users` list: see conf/users.toml for the format")
    return users


def validate(entry: Any, min_password_length: int) -> str | None:
    """Return why `entry` cannot be seeded, or None when it can."""
    if not isinstance(entry, dict):
        return "not a table"
    username = entry.get("username")
    if not isinstance(username, str) or not username.strip():
        return "`username` is missing or empty"
    if len(username) > MAX_USERNAME_LENGTH or any(ord(ch) < 32 or ch in "\x7f" for ch in username):
        return f"`username` must be at most {MAX_USERNAME_LENGTH} printable characters"
    password = entry.get("password")
    if not isinstance(password, str) or len(password) < min_password_length:
        return f"`password` must be a string of at least {min_password_length} characters"
    sub = entry.get("sub")
    if sub is not None and (not isinstance(sub, str) or not sub.strip() or len(sub) > 255):
        return "`sub` must be a non-empty string of at most 255 characters"
    claims = entry.get("claims", {})
    if not isinstance(claims, dict):
        return "`claims` must be a table"
    unknown = sorted(set(claims) - STANDARD_CLAIMS)
    if unknown:
        return f"unknown claims {', '.join(unknown)}: use OpenID Connect standard claims or `role`"
    role = claims.get("role", [])
    if not isinstance(role, list) or not all(isinstance(item, str) and item for item in role):
        return "`claims.role` must be a list of role names"
    return None


async def seed(entries: list[Any], min_password_length: int, cost: int) -> int:
    settings = load_settings()
    client = create_mongo(settings.common.mongo, "seed_users")
    store = UserStore(client[settings.common.mongo.database])
    hasher = PasswordHasher(cost)
    rejected = 0
    try:
        await store.ensure_indexes()
        for number, entry in enumerate(entries, start=1):
            problem = validate(entry, min_password_length)
            if problem:
                rejected += 1
                print(f"user #{number}: rejected: {problem}")
                continue
            existing = await store.find_by_username(entry["username"])
            # Keep the stored hash when the password is unchanged, so that seeding
            # the same file again costs no new bcrypt hash.
            password_hash = None
            if existing is None or not await hasher.verify(entry["password"], existing.password_hash):
                password_hash = await hasher.hash(entry["password"])
            user, created = await store.upsert(entry["username"], password_hash, entry.get("claims", {}),
                                               sub=entry.get("sub"))
            print(f"user {user.username}: {'created' if created else 'updated'} (sub {user.sub})")
    finally:
        hasher.close()
        await client.close()
    print(f"{len(entries) - rejected} seeded, {rejected} rejected")
    return 1 if rejected else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, help="users file (.toml or .json); default conf/users.toml")
    args = parser.parse_args()
    try:
        path = args.file or find_conf_dir() / DEMO_FILE
        raw = load_raw("identity.toml", "IDENTITY")
        cost = Reader(raw, "conf/identity.toml or the environment").integer(
            "passwords.bcrypt_cost", 12, minimum=12, maximum=16)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    # The demo file holds short development passwords on purpose.
    min_length = 1 if args.file is None else MIN_PASSWORD_LENGTH
    try:
        return asyncio.run(seed(read_users(path), min_length, cost))
    except UNAVAILABLE_ERRORS as exc:
        print(f"MongoDB is unavailable ({type(exc).__name__}): start it or set MONGO_URL", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
