"""A TCP load balancer on loopback for the scale-out tests.

It plays the part of the HAProxy or cloud load balancer of a real deployment. Each
new client connection goes to the next backend in turn. A backend that refuses
the connection (a stopped or killed instance) is skipped for the next one. A connection stays on the backend it was opened to, so it breaks when that
instance dies, as it would behind a real TCP balancer.
"""

from __future__ import annotations

import asyncio
import itertools
import threading

from servicekit.embedded import free_port


class RoundRobinBalancer:
    def __init__(self, backend_ports: list[int]):
        self.backend_ports = backend_ports
        self.port = free_port()
        self.connections: dict[int, int] = {port: 0 for port in backend_ports}
        self._turn = itertools.cycle(range(len(backend_ports)))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self) -> RoundRobinBalancer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _open_backend(self):
        first = next(self._turn)
        for offset in range(len(self.backend_ports)):
            port = self.backend_ports[(first + offset) % len(self.backend_ports)]
            try:
                streams = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            self.connections[port] += 1
            return streams
        return None

    async def _handle(self, client_reader, client_writer) -> None:
        backend = await self._open_backend()
        if backend is None:
            client_writer.close()
            return
        backend_reader, backend_writer = backend
        await asyncio.gather(self._pipe(client_reader, backend_writer), self._pipe(backend_reader, client_writer))

    @staticmethod
    async def _pipe(reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
