"""Entry point: `python -m gateway_srv` or the `gateway-srv` console command."""

from servicekit.service import run_service

from .app import build
from .settings import load_settings


def main() -> None:
    run_service(load_settings, build)


if __name__ == "__main__":
    main()
