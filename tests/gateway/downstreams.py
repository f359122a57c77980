"""Real HTTP servers that stand in for downstream services in the gateway tests.

Each runs in the test's event loop on a free port of 127.0.0.1:

* `Downstream`: an echo server that responds, after an optional delay, with JSON
  describing the request it received (method, raw path, query, headers, body size
  and digest) and a `X-Served-By` header naming itself;
* `HangingDownstream`: accepts the request and never responds;
* `ResettingDownstream`: resets the connection as soon as the request arrives;
* `TruncatingDownstream`: sends the headers and part of the body, then closes the
  connection or stalls.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket

import tornado.httpserver
import tornado.iostream
import tornado.web

from servicekit.embedded import free_port


class EchoHandler(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

    def initialize(self, name: str, seen: list, delay: float) -> None:
        self.name = name
        self.seen = seen
        self.delay = delay

    async def _echo(self, *args) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        request = self.request
        self.seen.append(request.uri)
        body = request.body
        self.set_header("X-Served-By", self.name)
        self.set_header("Server", f"echo/{self.name}")
        if request.path.endswith("/custom-headers"):
            self.set_header("Connection", "close, X-Private")
            self.set_header("X-Private", "hop")
            self.set_header("Keep-Alive", "timeout=5")
            self.add_header("Set-Cookie", "a=1")
            self.add_header("Set-Cookie", "b=2")
        if request.path.endswith("/status/418"):
            self.set_status(418)
        if request.path.endswith("/large"):
            self.set_header("Content-Type", "application/octet-stream")
            self.write(b"x" * 3_000_000)
            return
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps({
            "server": self.name,
            "method": request.method,
            "uri": request.uri,
            "path": request.path,
            "query": request.query,
            "headers": [[name, value] for name, value in request.headers.get_all()],
            "body_size": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        }))

    get = head = post = put = patch = delete = options = _echo


class HealthHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"status": "ok"})


class HangHandler(tornado.web.RequestHandler):
    async def get(self, *args) -> None:
        await asyncio.Event().wait()

    post = put = delete = get


class CountingServer(tornado.httpserver.HTTPServer):
    """An HTTPServer that counts the TCP connections it accepts."""

    connections = 0

    def handle_stream(self, stream, address):
        self.connections += 1
        return super().handle_stream(stream, address)


class Downstream:
    """An echo server that can be stopped and started again on the same port."""

    def __init__(self, name: str, port: int | None = None, delay: float = 0.0):
        self.name = name
        self.delay = delay
        self.port = port or free_port()
        self.seen: list[str] = []
        self.server: CountingServer | None = None
        self.connections = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def opened_connections(self) -> int:
        """Return the TCP connections accepted since the first start."""
        return self.connections + (self.server.connections if self.server else 0)

    def start(self) -> Downstream:
        app = tornado.web.Application([
            (r"/healthz", HealthHandler),
            (r"/.*", EchoHandler, {"name": self.name, "seen": self.seen, "delay": self.delay}),
        ])
        self.server = CountingServer(app)
        self.server.listen(self.port, address="127.0.0.1")
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.connections += self.server.connections
            self.server.stop()
            await self.server.close_all_connections()
            self.server = None


class HangingDownstream(Downstream):
    def start(self) -> HangingDownstream:
        self.server = CountingServer(tornado.web.Application([(r"/(.*)", HangHandler)]))
        self.server.listen(self.port, address="127.0.0.1")
        return self


class ResettingDownstream:
    """Accepts connections and closes each one with a TCP reset once the request arrives."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        sock = writer.get_extra_info("socket")
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()

    async def start(self) -> ResettingDownstream:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class TruncatingDownstream(ResettingDownstream):
    """Sends a 200 promising 100 body bytes, then 10 bytes, then closes or stalls."""

    def __init__(self, stall: bool = False) -> None:
        super().__init__()
        self.stall = stall

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 10)
        await writer.drain()
        if self.stall:
            await asyncio.Event().wait()
        writer.close()
