"""Fixtures that run a gateway in the test's event loop against real downstream servers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
import tornado.httpserver

from gateway_srv.app import build
from gateway_srv.proxy import Gateway
from gateway_srv.settings import load_settings
from servicekit.embedded import free_port
from servicekit.service import Service, open_stores
from tests.support.identity import identity_service  # noqa: F401 - a fixture for this folder

from .downstreams import Downstream


@dataclass
class RunningGateway:
    url: str
    service: Service
    server: tornado.httpserver.HTTPServer

    @property
    def gateway(self) -> Gateway:
        return self.service.app.wildcard_router.rules[-1].target_kwargs["gateway"]


def write_routes(directory: Path, text: str) -> Path:
    path = directory / "routes.toml"
    path.write_text(text)
    return path


def gateway_env(redis_url: str, routes_file: Path, **extra: str) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "GATEWAY__ROUTES__FILE": str(routes_file), "LOG_LEVEL": "info", **extra}


@pytest.fixture
def start_gateway(io_loop, redis_url, tmp_path):
    """Return a coroutine function that starts a gateway with the given route file text."""
    started: list[tuple[RunningGateway, object]] = []

    async def start(routes_text: str, **env: str) -> RunningGateway:
        routes_file = write_routes(tmp_path, routes_text)
        settings = load_settings(gateway_env(redis_url, routes_file, **env))
        stores = open_stores(settings.common)
        service = await build(settings, stores)
        server = tornado.httpserver.HTTPServer(service.app, max_body_size=settings.common.http.max_body_bytes * 4)
        port = free_port()
        server.listen(port, address="127.0.0.1")
        running = RunningGateway(f"http://127.0.0.1:{port}", service, server)
        started.append((running, stores))
        return running

    yield start

    async def stop_all() -> None:
        for running, stores in started:
            running.server.stop()
            await running.server.close_all_connections()
            for task in running.service.tasks:
                task.cancel()
            await asyncio.gather(*running.service.tasks, return_exceptions=True)
            for callback in running.service.on_close:
                await callback()
            await stores.close()

    io_loop.run_sync(stop_all)


@pytest.fixture
def echo(io_loop):
    downstream = Downstream("echo-a").start()
    yield downstream
    io_loop.run_sync(downstream.stop)


def open_route(hosts: list[str], upstream: str = "/things/{*rest}", downstream_path: str = "/api/things/{rest}",
               extra: str = "", group: str = "") -> str:
    """Route file text with one unauthenticated route to `hosts`."""
    host_list = ", ".join(f'"{h}"' for h in hosts)
    return f"""
[downstreams.svc]
hosts = [{host_list}]
{group}

[[routes]]
name = "things"
upstream_path = "{upstream}"
downstream_path = "{downstream_path}"
downstream = "svc"
timeout = 1.0
{extra}
"""
