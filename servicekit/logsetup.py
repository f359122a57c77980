"""Logging for the services: one format, three loggers per service, and redaction.

Each service logs to three loggers, one per audience:

* `<service>.access`: one line per request (method, path without the query string,
  status, duration, request id, client id and subject when known);
* `<service>.app`: starts, stops, dependency failures and unexpected errors;
* `<service>.audit`: security events such as sign-ins, token issuance and revocation.

Tornado's own access line contains the query string, which carries authorization
codes and `state`, so `log_request` replaces it. As a second line of defence,
`RedactingFilter` masks anything in a log message that looks like a JWT or a
secret-bearing parameter.
"""

from __future__ import annotations

import logging
import re
import sys
import time

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_SECRET_PARAMS = ("password", "client_secret", "code", "code_verifier", "refresh_token", "access_token",
                  "id_token", "token", "id_token_hint", "state", "nonce")
_SECRET_PARAM_NEEDLES = tuple(f"{name}=" for name in _SECRET_PARAMS)
_SECRET_PARAM = re.compile(r"(?i)\b(" + "|".join(_SECRET_PARAMS) + r")=[^\s&\",;]+")
_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_HEADER = re.compile(r"(?i)\b(authorization|cookie|set-cookie):\s*[^\r\n]+")
REDACTED = "[redacted]"
_DOTTED_AND_DOTLESS_I = {0x130: "i", 0x131: "i"}


def redact(text: str) -> str:
    """Mask JWTs and values of secret-bearing parameters in `text`.

    Each pattern runs only when the text contains the literal it needs, because
    most log lines contain none and a case-insensitive regex scan costs several
    microseconds a line. A replacement inserts none of these literals, so a
    pattern skipped on the original text cannot match after an earlier one ran.
    `re.IGNORECASE` matches "i" to "İ" (U+0130) and "ı" (U+0131), which `casefold`
    turns into two characters and keeps, so both are mapped to "i" first. Every
    other character that it matches to an ASCII letter casefolds to that letter.
    ASCII text has none of them and needs only `lower`, which costs a tenth as much.
    """
    if text.isascii():
        lowered = text.lower()
    else:
        lowered = text.translate(_DOTTED_AND_DOTLESS_I).casefold()
    if "eyj" in lowered:
        text = _JWT.sub(REDACTED, text)
    if "authorization" in lowered or "cookie" in lowered:
        text = _HEADER.sub(lambda m: f"{m.group(1)}: {REDACTED}", text)
    if "bearer" in lowered or "basic" in lowered:
        text = _CREDENTIAL.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    if "=" in lowered and any(needle in lowered for needle in _SECRET_PARAM_NEEDLES):
        text = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrite each record's message with `redact` before any handler formats it.

    The record keeps the redacted text as its message and drops its arguments,
    so that the formatter does not build the message a second time.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


class ServiceFormatter(logging.Formatter):
    """`FORMAT`, with the date and time of the current second formatted once.

    In a one-off timing, `time.strftime` took about a quarter of the time of a
    log line, and a service under load writes hundreds of lines within a second.
    The text is the default `asctime`: local time, a comma and milliseconds.
    """

    def __init__(self) -> None:
        super().__init__(FORMAT)
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        second, text = self._second
        if int(record.created) != second:
            second = int(record.created)
            text = time.strftime(self.default_time_format, self.converter(record.created))
            # One assignment, so a thread that logs at the same time reads a matching pair.
            self._second = (second, text)
        return self.default_msec_format % (text, record.msecs)


def configure_logging(level: str) -> None:
    """Send every logger's records to stderr in one format, with redaction.

    Idempotent: calling it again replaces the handler instead of adding one.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_servicekit", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ServiceFormatter())
    handler.addFilter(RedactingFilter())
    handler._servicekit = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # FORMAT names no thread, process or source line, so records skip looking them
    # up. Without `_srcfile`, a record does not walk the stack to find its caller,
    # as the logging HOWTO suggests. In a one-off timing that saved 4 µs of 30 µs a line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Tornado's access logger is replaced by `log_request`; keep its other loggers.
    logging.getLogger("tornado.access").setLevel(logging.CRITICAL)
    # PyMongo logs every topology change at debug; keep it out of service logs.
    logging.getLogger("pymongo").setLevel(max(logging.INFO, root.level))


def service_loggers(service: str) -> tuple[logging.Logger, logging.Logger, logging.Logger]:
    """Return the access, application and audit loggers of `service`."""
    return (
        logging.getLogger(f"{service}.access"),
        logging.getLogger(f"{service}.app"),
        logging.getLogger(f"{service}.audit"),
    )
