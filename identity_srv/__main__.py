"""Entry point: `python -m identity_srv` or the `identity-srv` console command."""

import sys

from servicekit.service import run_service

from .app import build
from .keystore import KeyDecryptionError
from .settings import load_settings


def main() -> None:
    try:
        run_service(load_settings, build)
    except KeyDecryptionError as exc:
        # Found only once MongoDB answers, so after the settings were read.
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
