"""Entry point: `python -m identity_srv` or the `identity-srv` console command."""

from servicekit.service import run_service

from .app import build
from .settings import load_settings


def main() -> None:
    run_service(load_settings, build)


if __name__ == "__main__":
    main()
