"""The headers the gateway sends downstream and returns to the client.

Hop-by-hop fields describe one connection, not the message, so a proxy removes
them in both directions. RFC 9110 section 7.6.1 lists `Connection`, every field
that `Connection` names, `Proxy-Connection`, `Keep-Alive`, `TE`,
`Transfer-Encoding` and `Upgrade`. `Proxy-Authenticate` and `Proxy-Authorization`
go too, because RFC 9110 section 11.7 scopes them to the next hop, and so does
`Trailer`, because the gateway does not forward trailers.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping

from tornado.httputil import HTTPHeaders, HTTPServerRequest

HOP_BY_HOP = frozenset({
    "connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "upgrade",
    "proxy-authenticate", "proxy-authorization", "trailer",
})

# Set by the gateway itself; a client's values are replaced, never passed on.
FORWARDED_FIELDS = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"})


def connection_tokens(values: Iterable[str]) -> set[str]:
    """Return the lower-cased field names listed in `Connection` header values."""
    return {token.strip().lower() for value in values for token in value.split(",") if token.strip()}


def end_to_end(pairs: Iterable[tuple[str, str]], connection_values: Iterable[str]) -> list[tuple[str, str]]:
    """Return `pairs` without hop-by-hop fields, in their order, duplicates kept."""
    dropped = HOP_BY_HOP | connection_tokens(connection_values)
    return [(name, value) for name, value in pairs if name.lower() not in dropped]


def _forwarded_node(address: str) -> str:
    """Format an address for `Forwarded: for=` (RFC 7239 section 6): IPv6 quoted in brackets."""
    try:
        if isinstance(ipaddress.ip_address(address), ipaddress.IPv6Address):
            return f'"[{address}]"'
    except ValueError:
        return '"' + address.replace('"', "") + '"'
    return address


def _quote_forwarded_value(value: str) -> str:
    safe = all(ch.isalnum() or ch in "!#$%&'*+-.^_`|~" for ch in value)
    return value if safe and value else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def downstream_request_headers(request: HTTPServerRequest, request_id: str, trust_proxy_headers: bool,
                               claim_headers: Mapping[str, str | None]) -> list[tuple[str, str]]:
    """Build the header list for the downstream request.

    Keeps the client's end-to-end fields (Authorization included, so the API can
    validate the token itself), drops `Host` (the HTTP client sets the downstream's),
    and sets `X-Forwarded-For`, `-Proto`, `-Host`, `Forwarded` and `X-Request-Id`.
    The client's forwarding fields are extended only when `trust_proxy_headers` is
    true (a proxy in front of the gateway set them). Otherwise they are replaced.
    The client's values of the headers named in `claim_headers` are always dropped,
    and the claim values sent instead (nothing when the value is None, because the
    token lacks the claim).
    """
    incoming = request.headers
    replaced = FORWARDED_FIELDS | {"host", "x-request-id"} | {n.lower() for n in claim_headers}
    pairs = [(name, value) for name, value in end_to_end(incoming.get_all(), incoming.get_list("Connection"))
             if name.lower() not in replaced]

    client = request.remote_ip or ""
    proto = request.protocol
    host = incoming.get("Host", "")
    forwarded_for = client
    forwarded = f"for={_forwarded_node(client)};host={_quote_forwarded_value(host)};proto={proto}"
    if trust_proxy_headers:
        if incoming.get("X-Forwarded-For"):
            forwarded_for = f"{incoming['X-Forwarded-For']}, {client}"
        if incoming.get("Forwarded"):
            forwarded = f"{incoming['Forwarded']}, {forwarded}"
    pairs += [
        ("X-Forwarded-For", forwarded_for),
        ("X-Forwarded-Proto", proto),
        ("X-Forwarded-Host", host),
        ("Forwarded", forwarded),
        ("X-Request-Id", request_id),
    ]
    pairs += [(name, value) for name, value in claim_headers.items() if value is not None]
    return pairs


_CONTENT_LENGTH = re.compile(r"[0-9]{1,18}")


def declared_length(headers: HTTPHeaders) -> int | None:
    """Return the `Content-Length` as a number, or None when it is absent or not 1 to 18 ASCII digits.

    `str.isdigit` accepts characters such as "²" that `int` rejects, and a value
    of thousands of digits makes `int` raise too. Tornado rejects such a request
    with 400 when it reads the body (RFC 9112 §6.3).
    """
    match = _CONTENT_LENGTH.fullmatch(headers.get("Content-Length", "").strip())
    return int(match.group()) if match else None


def has_body(headers: HTTPHeaders) -> bool:
    """Return True if the request carries a body (RFC 9112 section 6.3)."""
    if "Transfer-Encoding" in headers:
        return True
    return headers.get("Content-Length", "0").strip() not in ("", "0")
