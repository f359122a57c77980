"""Print the `secret_hash` line for a client secret, to paste into conf/clients.toml.

    python scripts/hash_client_secret.py                  prompts for the secret
    printf '%s' "$SECRET" | python scripts/hash_client_secret.py

The secret is read from the terminal or standard input, never from the command
line, where other users could read it in the process list and the shell keeps it
in its history. Generate a secret with
`python -c "import secrets; print(secrets.token_urlsafe(32))"`.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from identity_srv.secrets import hash_secret  # noqa: E402

# A shorter secret is not the high-entropy value that a single SHA-256 pass assumes.
MIN_SECRET_LENGTH = 22


def read_secret() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("client secret: ")
    return sys.stdin.read().rstrip("\r\n")


def main() -> int:
    secret = read_secret()
    if len(secret) < MIN_SECRET_LENGTH:
        print(f"the secret has {len(secret)} characters; use at least {MIN_SECRET_LENGTH} random "
              f"characters, for example from secrets.token_urlsafe(32)", file=sys.stderr)
        return 1
    print(f'secret_hash = "{hash_secret(secret)}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
