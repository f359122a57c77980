"""The gateway's wire errors, one class per error code.

Every body names the route it happened on (`"route": <name>`) when one matched,
so a client or an operator can tell which downstream failed without a stack trace.
`servicekit.errors` provides the 400 (`InvalidRequest`), 404 (`NotFound`) and 413
(`PayloadTooLarge`) errors.
"""

from __future__ import annotations

from servicekit.errors import HttpProblem


def route_problem(cls: type[HttpProblem], route: str | None, description: str, *,
                  headers: dict[str, str] | None = None, log_detail: str | None = None) -> HttpProblem:
    """Create `cls` with `"route": route` in its body when a route is known."""
    extra = {"route": route} if route else None
    return cls(description, headers=headers, log_detail=log_detail, extra=extra)


class MethodNotAllowed(HttpProblem):
    status = 405
    error = "method_not_allowed"


class TooManyRequests(HttpProblem):
    status = 429
    error = "too_many_requests"


class BadGateway(HttpProblem):
    """The downstream refused or reset the connection, or sent an invalid response."""

    status = 502
    error = "bad_gateway"


class CircuitOpen(HttpProblem):
    """The route's circuit breaker is open. `Retry-After` gives the seconds until a trial request."""

    status = 503
    error = "temporarily_unavailable"


class GatewayTimeout(HttpProblem):
    status = 504
    error = "gateway_timeout"
