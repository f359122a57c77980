"""Strict parsing of `application/x-www-form-urlencoded` request bodies.

The token, introspection and revocation endpoints take their parameters only from
such a body (RFC 6749 §3.2, RFC 7662 §2.1, RFC 7009 §2.1). Tornado's own body
parsing keeps repeated parameters as lists and silently replaces bytes it cannot
decode, so these endpoints parse the raw body here instead.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from tornado.httputil import HTTPHeaders

from .errors import InvalidRequest

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"

# More fields than any of these endpoints takes, by a wide margin.
MAX_FIELDS = 32

_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _check_content_type(headers: HTTPHeaders) -> None:
    # A wrong media type gets 400 invalid_request rather than 415: RFC 6749 §5.2
    # defines the token endpoint's errors, and "otherwise malformed" covers a body
    # that is not a form. Clients then get an `error` code they already handle.
    media_type, _, params = headers.get("Content-Type", "").partition(";")
    if media_type.strip().lower() != FORM_MEDIA_TYPE:
        raise InvalidRequest(f"the request body must be {FORM_MEDIA_TYPE}")
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset" and value.strip('"').lower() not in ("utf-8", "utf8"):
            raise InvalidRequest("the form must be encoded as UTF-8")


def _printable(name: str) -> str:
    # RFC 6749 §5.2 limits error_description to printable ASCII without '"' and
    # '\\', so a name outside that set is not echoed back.
    return repr(name) if _PLAIN_NAME.match(name) else "(a name with other characters)"


def parse_form(headers: HTTPHeaders, body: bytes) -> dict[str, str]:
    """Return the form's parameters, each name mapped to its single value.

    Raises InvalidRequest for another content type, a body that is not valid
    percent-encoded UTF-8, or a parameter given more than once (RFC 6749 §3.2:
    "Request and response parameters MUST NOT be included more than once").
    Parameters with an empty value are dropped, because RFC 6749 §3.1 states that they
    "MUST be treated as if they were omitted from the request".
    """
    _check_content_type(headers)
    try:
        text = body.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), encoding="utf-8",
                          errors="strict", max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the request body is not a valid form: percent-encode UTF-8 text") from None

    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise InvalidRequest(f"parameter {_printable(name)} is repeated")
        form[name] = value
    return {name: value for name, value in form.items() if value}


def required(form: dict[str, str], name: str) -> str:
    """Return the value of parameter `name`; raise InvalidRequest when it is missing or empty."""
    value = form.get(name)
    if value is None:
        raise InvalidRequest(f"parameter {name!r} is missing")
    return value
