"""Client authentication at the token, introspection and revocation endpoints.

Two methods (RFC 6749 §2.3.1): `client_secret_basic`, the id and secret in an HTTP
Basic `Authorization` header, and `client_secret_post`, `client_id` and
`client_secret` in the form. A request may use only one of them.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from urllib.parse import unquote_plus

from tornado.httputil import HTTPHeaders

from .clients import Client, Registry
from .errors import InvalidClient, InvalidRequest
from .secrets import verify_secret

audit_log = logging.getLogger("identity_srv.audit")

METHODS = ("client_secret_basic", "client_secret_post")
# The token endpoint also takes public clients, which send no secret (RFC 8414 §2).
TOKEN_ENDPOINT_METHODS = (*METHODS, "none")

# Maximum length of a client id copied into a log line; longer ones are cut.
_LOGGED_ID_LENGTH = 80

# Compared against when the client is unknown, so both cases cost one digest.
_NO_CLIENT_HASH = "sha256:" + "0" * 64


@dataclass(frozen=True)
class Credentials:
    client_id: str
    secret: str
    method: str


def _decode_basic(value: str) -> Credentials:
    """Decode `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1)."""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClient("the Authorization header must use the Basic scheme")
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient("the Basic credentials are not valid base64 of UTF-8 text") from None
    encoded_id, colon, encoded_secret = decoded.partition(":")
    if not colon:
        raise InvalidClient("the Basic credentials have no ':' between client id and secret")
    # The id and secret are form-urlencoded before they are joined, so a ':' inside
    # either travels as %3A and a space as '+'.
    try:
        client_id = unquote_plus(encoded_id, errors="strict")
        secret = unquote_plus(encoded_secret, errors="strict")
    except UnicodeDecodeError:
        raise InvalidClient("the Basic credentials are not valid percent-encoded UTF-8") from None
    return Credentials(client_id, secret, "client_secret_basic")


def read_credentials(headers: HTTPHeaders, form: dict[str, str]) -> Credentials:
    """Return the credentials the request carries; raise if there are none or two sets.

    Raises InvalidRequest when the request uses both methods or repeats the header
    (RFC 6749 §2.3: "MUST NOT use more than one authentication method in each
    request"), InvalidClient when it carries no usable credentials.
    """
    authorization = headers.get_list("Authorization")
    if len(authorization) > 1:
        raise InvalidRequest("the Authorization header is repeated")

    if authorization:
        if "client_secret" in form:
            raise InvalidRequest("the request uses both client_secret_basic and client_secret_post: "
                                 "send the credentials once")
        credentials = _decode_basic(authorization[0])
        if form.get("client_id", credentials.client_id) != credentials.client_id:
            raise InvalidRequest("client_id in the form differs from the client in the Authorization header")
        return credentials

    if "client_id" not in form:
        raise InvalidClient("client authentication is required: use client_secret_basic or "
                            "client_secret_post")
    if "client_secret" not in form:
        return Credentials(form["client_id"], "", "none")
    return Credentials(form["client_id"], form["client_secret"], "client_secret_post")


def authenticate(registry: Registry, headers: HTTPHeaders, form: dict[str, str],
                 allow_public: bool = False) -> Client:
    """Return the client the request authenticates as; raise InvalidClient otherwise.

    With `allow_public` (the token endpoint), a public client identifies itself
    with `client_id` alone (method `none`); PKCE then binds its code instead of a
    secret. A confidential client always needs its secret.

    An unknown client id and a wrong secret give the same response and take the same
    time (a digest is compared either way), so the response does not reveal which
    client ids exist. Failures are logged on the audit logger without the secret.
    """
    try:
        credentials = read_credentials(headers, form)
    except InvalidClient as exc:
        audit_log.warning("client authentication failed: client=- reason=%s", exc.description)
        raise
    client = registry.clients.get(credentials.client_id)
    stored_hash = client.secret_hash if client is not None and client.secret_hash else _NO_CLIENT_HASH
    matches = verify_secret(credentials.secret, stored_hash)

    reason = None
    if client is None:
        reason = "unknown client"
    elif not client.confidential and allow_public and credentials.method == "none":
        return client
    elif not client.confidential:
        reason = "public client at an endpoint that requires a secret"
    elif not credentials.secret:
        reason = "no secret"
    elif not matches:
        reason = "wrong secret"
    if reason is not None:
        audit_log.warning("client authentication failed: client=%r method=%s reason=%s",
                          credentials.client_id[:_LOGGED_ID_LENGTH], credentials.method, reason)
        raise InvalidClient()
    return client
