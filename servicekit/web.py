"""The request boundary every service's handlers share.

`BaseHandler` gives each request an id, counts it while in flight (for a clean
shutdown), and turns every exception into a JSON response:

* `HttpProblem` -> its status, headers and body, no traceback;
* a store that is down -> 503 `temporarily_unavailable` naming the store, logged
  as one warning line;
* Tornado's `HTTPError` -> its status with a generic error code;
* anything else -> 500 `server_error`, logged with its traceback.

Every 405 carries `Allow` with the methods the handler implements (RFC 9110
§15.5.6). A handler that serves HEAD sets `head = get`, and Tornado then sends
the headers of the GET response without its body.

`log_request` replaces Tornado's access line, which would include the query string.
"""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any

import tornado.web

from .errors import HttpProblem, PayloadTooLarge
from .stores import UNAVAILABLE_ERRORS, StoreUnavailable, store_name

REQUEST_ID_HEADER = "X-Request-Id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# Error codes for HTTP errors that Tornado raises itself (unknown method, XSRF, ...).
_GENERIC_ERRORS = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    411: "length_required",
    412: "precondition_failed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "temporarily_unavailable",
}

# One encoder for every response: `json.dumps` with `default` builds a new one per call.
_JSON = json.JSONEncoder(separators=(",", ":"), default=str)

# Seconds a client should wait before retrying after a store outage.
UNAVAILABLE_RETRY_AFTER = 5


class InFlight:
    """Counts requests being handled, so shutdown can wait until they finish."""

    def __init__(self) -> None:
        self.count = 0

    def enter(self) -> None:
        self.count += 1

    def leave(self) -> None:
        self.count -= 1


def request_id_from(header_value: str | None) -> str:
    """Return the caller's request id when it is safe to log and forward, else a new one.

    A new id is 128 random bits in hex, the length of a UUID's hex form, without
    the cost of building a `uuid.UUID` object (about 5 µs, against under 1 µs).
    """
    if header_value and _VALID_REQUEST_ID.match(header_value):
        return header_value
    return os.urandom(16).hex()


class BaseHandler(tornado.web.RequestHandler):
    """A JSON handler with request ids, in-flight counting and the error boundary.

    Subclasses may set `log_client_id` and `log_subject` for the access line.
    """

    request_id: str = "-"
    log_client_id: str | None = None
    log_subject: str | None = None
    _counted = False
    # The `Allow` value of a 405 being sent; see send_error.
    _allow: str | None = None

    def __init__(self, application: tornado.web.Application, request, **kwargs: Any):
        self.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        super().__init__(application, request, **kwargs)
        inflight = application.settings.get("inflight")
        if inflight is not None:
            inflight.enter()
            self._counted = True

    def _stop_counting(self) -> None:
        if self._counted:
            self._counted = False
            self.application.settings["inflight"].leave()

    def on_finish(self) -> None:
        self._stop_counting()

    def on_connection_close(self) -> None:
        self._stop_counting()

    def set_default_headers(self) -> None:
        self.set_header(REQUEST_ID_HEADER, self.request_id)
        self.set_header("X-Content-Type-Options", "nosniff")
        if self._allow is not None:
            self.set_header("Allow", self._allow)

    def allowed_methods(self) -> list[str]:
        """Return the methods of `SUPPORTED_METHODS` that this handler class implements."""
        return [method for method in self.SUPPORTED_METHODS
                if getattr(type(self), method.lower(), None)
                is not getattr(tornado.web.RequestHandler, method.lower(), None)]

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        # RFC 9110 §15.5.6: a 405 MUST list the supported methods in `Allow`. Tornado's
        # send_error clears the headers and then calls set_default_headers, which adds
        # it, so it is sent also by subclasses that write their own error pages. An
        # error's own `Allow` (the gateway's, per route) is set later and replaces it.
        if status_code == 405:
            self._allow = ", ".join(self.allowed_methods())
        super().send_error(status_code, **kwargs)

    @property
    def app_log(self) -> logging.Logger:
        return logging.getLogger(f"{self.settings['service']}.app")

    def prepare(self) -> Any:
        limit = self.settings.get("max_body_bytes")
        if limit is not None and len(self.request.body) > limit:
            raise PayloadTooLarge(f"the request body exceeds {limit} bytes")
        return None

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(_JSON.encode(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs["exc_info"][1] if "exc_info" in kwargs else None
        self.clear_header("Content-Type")
        if isinstance(exc, HttpProblem):
            for name, value in exc.headers.items():
                self.set_header(name, value)
            self.write_json(exc.body(), exc.status)
        elif isinstance(exc, (StoreUnavailable, *UNAVAILABLE_ERRORS)):
            store = store_name(exc)
            self.set_header("Retry-After", str(UNAVAILABLE_RETRY_AFTER))
            self.write_json({
                "error": "temporarily_unavailable",
                "error_description": f"{store} is unavailable; retry shortly",
            }, 503)
        elif isinstance(exc, tornado.web.HTTPError) or exc is None:
            self.write_json({
                "error": _GENERIC_ERRORS.get(status_code, "invalid_request" if status_code < 500 else "server_error"),
                "error_description": self._reason,
            }, status_code)
        else:
            self.write_json({
                "error": "server_error",
                "error_description": f"internal error; quote request id {self.request_id}",
            }, 500)

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, HttpProblem):
            if value.log_detail:
                self.app_log.warning("%s %s: %s (rid=%s)", self.request.method, self.request.path,
                                     value.log_detail, self.request_id)
        elif isinstance(value, (StoreUnavailable, *UNAVAILABLE_ERRORS)):
            cause = value.__cause__ if isinstance(value, StoreUnavailable) and value.__cause__ else value
            self.app_log.warning("%s unavailable during %s %s: %s: %s (rid=%s)", store_name(value),
                                 self.request.method, self.request.path, type(cause).__name__, cause,
                                 self.request_id)
        elif isinstance(value, tornado.web.HTTPError):
            super().log_exception(typ, value, tb)
        else:
            self.app_log.error("unhandled error in %s %s (rid=%s)", self.request.method, self.request.path,
                               self.request_id, exc_info=(typ, value, tb))


class NotFoundHandler(BaseHandler):
    """Default handler: a JSON 404 for any path no route matches."""

    def prepare(self) -> None:
        raise tornado.web.HTTPError(404, reason="no resource at this path")


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Write the access line: method, path, status, duration, request id, client, subject.

    The path is logged without its query string, which may carry codes and `state`.
    """
    status = handler.get_status()
    logger = logging.getLogger(f"{handler.settings.get('service', 'service')}.access")
    if status < 400:
        level = logging.INFO
    elif status < 500:
        level = logging.WARNING
    else:
        level = logging.ERROR
    if not logger.isEnabledFor(level):
        return
    request = handler.request
    logger.log(
        level, "%s %s %d %.1fms rid=%s client=%s sub=%s",
        request.method, request.path, status, 1000.0 * request.request_time(),
        getattr(handler, "request_id", "-"), getattr(handler, "log_client_id", None) or "-",
        getattr(handler, "log_subject", None) or "-",
    )
