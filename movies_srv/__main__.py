"""Entry point: `python -m movies_srv` or the `movies-srv` console command."""

from servicekit.service import run_service

from .app import build
from .settings import load_settings


def main() -> None:
    run_service(load_settings, build)


if __name__ == "__main__":
    main()
