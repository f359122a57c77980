"""A threaded stdlib HTTP server on a free loopback port, for test peers."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from servicekit.embedded import free_port


class LoopbackServer:
    """Serve `handler` on 127.0.0.1 in a background thread until `stop`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
