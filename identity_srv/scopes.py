"""Parsing and checking the `scope` request parameter (RFC 6749 §3.3)."""

from __future__ import annotations

from .clients import SCOPE_TOKEN, Client, Registry
from .errors import InvalidScope


def parse_scope(text: str | None) -> tuple[str, ...]:
    """Split a space-delimited scope string; raise InvalidScope if it is malformed.

    Order is kept and a repeated scope counts once.
    """
    if text is None:
        return ()
    tokens = text.split(" ")
    if any(not SCOPE_TOKEN.match(token) for token in tokens):
        raise InvalidScope("scope must be scope names separated by single spaces")
    return tuple(dict.fromkeys(tokens))


def api_scopes_for(registry: Registry, client: Client, requested: tuple[str, ...]) -> tuple[str, ...]:
    """Return the API scopes a machine token gets: the requested ones, or all the client's.

    Raises InvalidScope when a requested scope is unknown, not granted to the
    client, or an identity scope (a token without a user has no user claims to
    release), and when the result would be empty.
    """
    if not requested:
        granted = tuple(scope for scope in client.scopes if scope in registry.api_scopes)
        if not granted:
            raise InvalidScope("the client has no API scopes")
        return granted
    for scope in requested:
        if scope not in client.scopes:
            raise InvalidScope(f"scope {scope!r} is not allowed for this client")
        if scope not in registry.api_scopes:
            raise InvalidScope(f"scope {scope!r} needs a signed-in user and cannot be granted to a client alone")
    return requested
