"""The proxy handler: one request through the gateway's pipeline.

Steps, in order:

1. match the route (404, 405, or 400 for dot-segments);
2. check the declared body size (413);
3. authenticate and check the route's policy (401, 403);
4. count the rate limits (429), in the same Redis round trip as the
   token's deny-list entry (`admission.py`);
5. ask the circuit breaker (503);
6. send the request to a host the load balancer picks, and relay the response.

Bodies stream in both directions. A request body starts flowing downstream as
soon as the client sends it, through a small queue whose `put` waits while the
downstream is slower (back-pressure). A response body streams back chunk by
chunk, except a small one with a known length, which is read whole first.

Steps 1 to 5 run in `prepare`, before Tornado reads the request body. Tornado
closes the connection after a response that it sends before the request is read
to its end, also for a request without a body. So an error in those steps waits
for the method call when the request has no body, or a declared body of at most
`_DISCARDED_BODY_BYTES`, which is read and dropped. Both keep the connection
open. Any other error goes out at once with `Connection: close` (RFC 9112 §9.6).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import tornado.iostream
import tornado.web
import yarl

from servicekit.errors import HttpProblem, InvalidRequest, NotFound, PayloadTooLarge
from servicekit.web import REQUEST_ID_HEADER, BaseHandler

from .admission import Admission
from .balancer import Balancer, Host
from .circuit import CircuitBreaker
from .errors import (
    BadGateway,
    CircuitOpen,
    GatewayTimeout,
    MethodNotAllowed,
    route_problem,
)
from .forwarding import declared_length, downstream_request_headers, end_to_end, has_body
from .routes import IDEMPOTENT_METHODS, METHODS, Route, RouteTable
from .settings import ProxySettings
from .templates import has_dot_segment

log = logging.getLogger("gateway_srv.app")

# Headers aiohttp would add on its own; the gateway sends only what the client sent.
_SKIP_AUTO_HEADERS = frozenset({"User-Agent", "Accept", "Accept-Encoding", "Content-Type"})
# Headers Tornado sets on every response; a proxied response carries the downstream's instead.
_TORNADO_DEFAULTS = ("Server", "Content-Type", "Date", "X-Content-Type-Options")
# A chunked body past the limit is read and discarded, so the client gets a JSON 413.
# Past this many times the limit, Tornado closes the connection instead.
_DISCARD_FACTOR = 16
# A rejected request's body up to this size is read and dropped, so that the
# client keeps its connection. Reading more would let anyone make the gateway
# read a large body that it was never going to forward.
_DISCARDED_BODY_BYTES = 64 * 1024
# Seconds a client whose request was refused has to send such a body; Tornado then
# closes the connection. Tornado sets no limit on reading a body by default.
_DISCARD_TIMEOUT = 10.0
_QUEUE_CHUNKS = 8
# Response bodies up to this size with a Content-Length are read whole, then written once.
_BUFFERED_BODY_BYTES = 256 * 1024


@dataclass
class Gateway:
    """The state one gateway process shares between requests."""

    routes: RouteTable
    proxy: ProxySettings
    session: aiohttp.ClientSession
    admission: Admission
    trust_proxy_headers: bool
    balancers: dict[str, Balancer] = field(default_factory=dict)
    circuits: dict[str, CircuitBreaker] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, downstream in self.routes.downstreams.items():
            self.balancers[name] = Balancer(downstream)
        for route in self.routes.routes:
            if route.circuit_breaker:
                self.circuits[route.name] = CircuitBreaker(route.circuit_breaker)


class _Attempt:
    """The outcome of sending the request to one host."""

    def __init__(self, host: Host, response: aiohttp.ClientResponse):
        self.host = host
        self.response = response


class _BodyQueue:
    """Chunks of the client's body on their way downstream; None ends the body."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=_QUEUE_CHUNKS)

    async def chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self.queue.get()) is not None:
            yield chunk


@tornado.web.stream_request_body
class ProxyHandler(BaseHandler):
    SUPPORTED_METHODS = METHODS

    def initialize(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.route: Route | None = None
        self.claims: Mapping[str, Any] = {}
        self.extra_headers: dict[str, str] = {}
        self.circuit: CircuitBreaker | None = None
        self.circuit_acquired = False
        self.body: _BodyQueue | None = None
        self.exchange: asyncio.Task | None = None
        self.received = 0
        self.too_large = False
        # Tornado calls the method only after the whole request has been read.
        self.request_read = False
        # An error of steps 1 to 5 for a request without a body, raised in the method.
        self.rejection: Exception | None = None

    def compute_etag(self) -> None:
        # The downstream decides about ETags; Tornado must not add its own.
        return None

    async def prepare(self) -> None:
        try:
            await self._admit()
        except Exception as exc:
            # Every error still reaches the boundary; this only decides when.
            if has_body(self.request.headers):
                if not self._body_is_discardable():
                    raise
                self.request.connection.set_body_timeout(_DISCARD_TIMEOUT)
            self.rejection = exc

    def _body_is_discardable(self) -> bool:
        """Return True for a body worth reading only to keep the connection.

        That is a declared length of at most `_DISCARDED_BODY_BYTES`, without
        `Expect: 100-continue`: a client that waits for a 100 response has not
        sent its body yet and should not be asked to send it only to have it dropped.
        """
        headers = self.request.headers
        declared = declared_length(headers)
        return ("Transfer-Encoding" not in headers and declared is not None and declared <= _DISCARDED_BODY_BYTES
                and headers.get("Expect", "").strip().lower() != "100-continue")

    async def _admit(self) -> None:
        """Run steps 1 to 5 and start sending a request body downstream; raise the first error."""
        method = self.request.method
        self.route, values = self._select_route(method)
        self._check_declared_size()
        admitted = await self.gateway.admission.admit(self, self.route)
        self.claims = admitted.claims
        self.extra_headers.update(admitted.headers)
        self._acquire_circuit()
        self.downstream_path = self.route.downstream_path.expand(values)
        if has_body(self.request.headers):
            self.body = _BodyQueue()
            self.exchange = asyncio.ensure_future(self._send_with_retries(self.body.chunks()))

    def _select_route(self, method: str) -> tuple[Route, dict[str, str]]:
        path = self.request.path
        if has_dot_segment(path):
            raise InvalidRequest("the path must not contain '.' or '..' segments")
        candidates = self.gateway.routes.match(path)
        if not candidates:
            raise NotFound("no route matches this path")
        for route, values in candidates:
            if route.allows(method):
                return route, values
        allowed = sorted({m for route, _ in candidates for m in (route.methods or METHODS)})
        raise route_problem(MethodNotAllowed, candidates[0][0].name, f"{method} is not allowed on this path",
                            headers={"Allow": ", ".join(allowed)})

    def _check_declared_size(self) -> None:
        limit = self.gateway.proxy.max_body_bytes
        declared = declared_length(self.request.headers)
        if declared is not None and declared > limit:
            raise route_problem(PayloadTooLarge, self.route.name, f"the request body exceeds {limit} bytes")
        # Read a chunked body past the limit (and discard it) so the client gets the JSON 413.
        self.request.connection.set_max_body_size(limit * _DISCARD_FACTOR)

    def _acquire_circuit(self) -> None:
        self.circuit = self.gateway.circuits.get(self.route.name)
        if self.circuit is None:
            return
        if not self.circuit.try_acquire():
            wait = self.circuit.retry_after()
            raise route_problem(CircuitOpen, self.route.name,
                                f"the route's circuit breaker is open after repeated downstream failures; "
                                f"retry in {wait}s", headers={"Retry-After": str(wait)})
        self.circuit_acquired = True

    async def data_received(self, chunk: bytes) -> None:
        if self.rejection is not None:
            return
        self.received += len(chunk)
        if self.received > self.gateway.proxy.max_body_bytes:
            if not self.too_large:
                self.too_large = True
                self.exchange.cancel()
            return
        if self.exchange.done():
            return
        # Wait for room in the queue, unless the exchange ends first because it
        # failed or the downstream responded without reading the whole body.
        put = asyncio.ensure_future(self.body.queue.put(chunk))
        await asyncio.wait([put, self.exchange], return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()

    async def _proxy(self) -> None:
        self.request_read = True
        if self.rejection is not None:
            raise self.rejection
        if self.too_large:
            limit = self.gateway.proxy.max_body_bytes
            raise route_problem(PayloadTooLarge, self.route.name, f"the request body exceeds {limit} bytes")
        if self.exchange is not None:
            end = asyncio.ensure_future(self.body.queue.put(None))
            await asyncio.wait([end, self.exchange], return_when=asyncio.FIRST_COMPLETED)
            if not end.done():
                end.cancel()
            attempt = await self.exchange
        else:
            attempt = await self._send_with_retries(None)
        try:
            await self._relay(attempt.response)
        finally:
            attempt.host.outstanding -= 1
            attempt.response.close()

    get = head = post = put = patch = delete = options = _proxy

    async def _send_with_retries(self, body: AsyncIterator[bytes] | None) -> _Attempt:
        """Send the request, retrying on another host when that is safe; record the verdict.

        A connection that could not be opened sent nothing, so it is retried for
        every method. A connection reset after sending is retried only for an
        idempotent request without a body. A timeout is never retried, because a
        slow downstream would get the request again while still working on it.
        """
        route = self.route
        balancer = self.gateway.balancers[route.downstream]
        attempts = 1 + route.retries
        tried: set[str] = set()
        failure = ""
        for attempt in range(attempts):
            if failure:
                log.warning("route %s: retrying (attempt %d of %d) after %s (rid=%s)",
                            route.name, attempt + 1, attempts, failure, self.request_id)
            host = balancer.pick(exclude=tried)
            tried.add(host.url)
            host.outstanding += 1
            try:
                response = await self._send(host, body)
            except asyncio.CancelledError:
                host.outstanding -= 1
                raise
            except TimeoutError:
                host.outstanding -= 1
                self._record_failure(balancer, host)
                raise route_problem(GatewayTimeout, route.name,
                                    f"the downstream did not respond within {route.timeout:g}s",
                                    log_detail=f"timeout from {host.url} on route {route.name}") from None
            except aiohttp.ClientConnectorError as exc:
                host.outstanding -= 1
                balancer.record_failure(host)
                failure = f"connection to {host.url} failed: {exc.os_error or exc}"
                continue
            except (aiohttp.ClientConnectionError, aiohttp.ClientResponseError) as exc:
                host.outstanding -= 1
                balancer.record_failure(host)
                failure = f"{host.url} reset the connection or sent an invalid response: {type(exc).__name__}"
                if body is None and self.request.method in IDEMPOTENT_METHODS:
                    continue
                break
            balancer.record_success(host)
            self._record_success()
            return _Attempt(host, response)
        self._record_failure(balancer, None)
        raise route_problem(BadGateway, route.name, "the downstream refused or reset the connection",
                            log_detail=f"route {route.name}: {failure}")

    async def _send(self, host: Host, body: AsyncIterator[bytes] | None) -> aiohttp.ClientResponse:
        query = self.request.query
        url = host.url + self.downstream_path + (f"?{query}" if query else "")
        claim_headers = {header: _header_value(self.claims[claim]) if claim in self.claims else None
                         for header, claim in self.route.claims_to_headers}
        headers = downstream_request_headers(self.request, self.request_id, self.gateway.trust_proxy_headers,
                                             claim_headers)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.gateway.proxy.connect_timeout,
                                        sock_read=self.route.timeout)
        # encoded=True keeps the client's percent-encoding byte for byte.
        return await self.gateway.session.request(
            self.request.method, yarl.URL(url, encoded=True), headers=headers, data=body,
            allow_redirects=False, timeout=timeout, skip_auto_headers=_SKIP_AUTO_HEADERS)

    def _record_success(self) -> None:
        if self.circuit_acquired:
            self.circuit_acquired = False
            self.circuit.record_success()

    def _record_failure(self, balancer: Balancer, host: Host | None) -> None:
        if host is not None:
            balancer.record_failure(host)
        if self.circuit_acquired:
            self.circuit_acquired = False
            self.circuit.record_failure()

    async def _relay(self, response: aiohttp.ClientResponse) -> None:
        """Write the downstream's status, end-to-end headers and body to the client."""
        self.set_status(response.status, response.reason or None)
        for name in _TORNADO_DEFAULTS:
            self.clear_header(name)
        pairs = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in response.raw_headers]
        connection = [value for name, value in pairs if name.lower() == "connection"]
        for name, value in end_to_end(pairs, connection):
            if name.lower() != REQUEST_ID_HEADER.lower():
                self.add_header(name, value)
        for name, value in self.extra_headers.items():
            self.set_header(name, value)
        await self._relay_body(response)

    async def _relay_body(self, response: aiohttp.ClientResponse) -> None:
        # A small body with a known length is read whole and written once; a larger
        # or chunked one streams. Until the first flush nothing has reached the
        # client, so a failure up to then is still a clean 502 or 504.
        flushed = False
        try:
            length = response.content_length
            # aiohttp reads no body for a response to HEAD, whatever its Content-Length.
            if self.request.method == "HEAD" or length is not None and length <= _BUFFERED_BODY_BYTES:
                self.write(await response.read())
            else:
                async for chunk in response.content.iter_any():
                    self.write(chunk)
                    await self.flush()
                    flushed = True
        except tornado.iostream.StreamClosedError:
            return
        except (TimeoutError, aiohttp.ClientError) as exc:
            if not flushed:
                raise self._body_problem(exc) from None
            # The status line is already sent, so the only honest signal left is to
            # close the connection before the body is complete.
            log.warning("route %s: downstream body failed after the headers: %s (rid=%s)",
                        self.route.name, type(exc).__name__, self.request_id)
            self.request.connection.close()
            return
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if not self.request_read:
            # Tornado closes the connection after this response (see the module docstring).
            self.set_header("Connection", "close")
        super().write_error(status_code, **kwargs)

    def _body_problem(self, exc: Exception) -> HttpProblem:
        """Return the 504 or 502 for a downstream body that failed before any of it was sent."""
        detail = f"route {self.route.name}: downstream body failed: {type(exc).__name__}"
        if isinstance(exc, TimeoutError):
            return route_problem(GatewayTimeout, self.route.name,
                                 f"the downstream did not send its response within {self.route.timeout:g}s",
                                 log_detail=detail)
        return route_problem(BadGateway, self.route.name, "the downstream closed the connection mid-response",
                             log_detail=detail)

    def on_finish(self) -> None:
        self._release()
        super().on_finish()

    def on_connection_close(self) -> None:
        self._release()
        super().on_connection_close()

    def _release(self) -> None:
        if self.exchange is not None and not self.exchange.done():
            self.exchange.cancel()
        if self.circuit_acquired:
            self.circuit_acquired = False
            self.circuit.release()


def _header_value(value: Any) -> str:
    """Format a claim for a header: arrays as comma-separated values, control characters removed."""
    if isinstance(value, list):
        text = ",".join(_header_value(item) for item in value)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return "".join(ch for ch in text if ch >= " " and ch != "\x7f")
