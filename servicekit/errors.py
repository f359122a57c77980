"""The base of every error that a handler turns into an HTTP response.

A service defines its wire errors as subclasses of `HttpProblem`, one class per
protocol error code, and raises them. The request boundary in `servicekit.web`
writes the status, the extra headers and the JSON body `{"error": ...,
"error_description": ...}`; it never writes a stack trace.
"""

from __future__ import annotations

from typing import Any, Mapping

from tornado.web import HTTPError


class HttpProblem(HTTPError):
    """An expected error with a status, a protocol error code and a client-facing text.

    `description` is sent to the client. `log_detail` is for the operator's log only
    and may name internal causes; it must not contain secrets. `headers` are added
    to the response (for example `WWW-Authenticate`). Instances are created per
    request and never shared, so nothing mutates a shared error object.
    """

    status = 400
    error = "invalid_request"

    def __init__(self, description: str = "", *, headers: Mapping[str, str] | None = None,
                 log_detail: str | None = None, extra: Mapping[str, Any] | None = None):
        # Tornado formats log_message with %-args; passing None avoids that and the
        # boundary logs `log_detail` itself.
        super().__init__(self.status, None, reason=None)
        self.description = description
        self.headers = dict(headers or {})
        self.log_detail = log_detail
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        body.update(self.extra)
        return body

    def __str__(self) -> str:
        return f"{self.status} {self.error}: {self.description}"


class InvalidRequest(HttpProblem):
    status = 400
    error = "invalid_request"


class NotFound(HttpProblem):
    status = 404
    error = "not_found"


class PayloadTooLarge(HttpProblem):
    status = 413
    error = "request_too_large"
