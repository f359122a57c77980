"""Entry point: `python -m identity_srv` or the `identity-srv` console command."""

import sys

from servicekit.service import run_service
from servicekit.stores import UNAVAILABLE_ERRORS

from .app import build
from .keystore import KeyDecryptionError
from .settings import load_settings_to_serve


def main() -> None:
    try:
        run_service(load_settings_to_serve, build)
    except KeyDecryptionError as exc:
        # Detected only once MongoDB is reachable, so after the settings were read.
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    except UNAVAILABLE_ERRORS as exc:
        # The signing keys are loaded before the service listens, so it needs MongoDB to start.
        print(f"identity_srv cannot start: MongoDB is unavailable ({type(exc).__name__}); check "
              f"mongo.url or MONGO_URL", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
