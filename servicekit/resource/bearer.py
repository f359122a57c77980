"""Authenticate a Tornado request by its bearer access token (RFC 6750).

Handlers call `await authenticate(self, validator, policy)` at the start of each
method that needs a token. It returns the validated `AccessToken`, or raises the
`HttpProblem` that the request boundary turns into the RFC 6750 §3 response.
"""

from __future__ import annotations

import re

import tornado.httputil
import tornado.web

from .errors import InvalidBearerRequest, MissingToken
from .policy import Policy
from .validator import AccessToken, AccessTokenValidator

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

# The parameter RFC 6750 §2.2 and §2.3 name for a token in a form body or URL.
_TOKEN_PARAMETER = "access_token"


def bearer_token(request: tornado.httputil.HTTPServerRequest, realm: str) -> str:
    """Return the token of the request's `Authorization: Bearer` header.

    Only the header is accepted, because a token in the URL ends up in logs and
    browser history. An `access_token` parameter in the query or form body is
    rejected with 400 `invalid_request`, and so is a token sent in two places
    (RFC 6750 §2).
    A request with no Authorization header, or another scheme, gets 401 without
    an error code (RFC 6750 §3.1).
    """
    headers = request.headers.get_list("Authorization")
    if _TOKEN_PARAMETER in request.query_arguments or _TOKEN_PARAMETER in request.body_arguments:
        if headers:
            raise InvalidBearerRequest("the request carries an access token in more than one place",
                                       realm=realm)
        raise InvalidBearerRequest("send the access token in the Authorization header, "
                                   "not in the URL or the body", realm=realm)
    if not headers:
        raise MissingToken("a bearer access token is required", realm=realm)
    if len(headers) > 1:
        raise InvalidBearerRequest("the request has more than one Authorization header", realm=realm)

    # The scheme name is case-insensitive (RFC 9110 §11.1).
    scheme, _, credentials = headers[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        raise MissingToken("a bearer access token is required", realm=realm)
    credentials = credentials.strip()
    if not _B64TOKEN.fullmatch(credentials):
        raise InvalidBearerRequest("the Authorization header must be `Bearer <token>`", realm=realm)
    return credentials


async def authenticate(handler: tornado.web.RequestHandler, validator: AccessTokenValidator,
                       policy: Policy | None = None) -> AccessToken:
    """Validate the request's bearer token, check `policy`, and return the token.

    Sets `handler.log_client_id` and `handler.log_subject` for the access line once
    the token is valid, so a 403 is logged with who was refused. Raises
    `MissingToken`, `InvalidBearerRequest`, `InvalidToken`, `InsufficientScope`
    or `ProviderUnavailable`.
    """
    realm = validator.settings.realm
    token = await validator.validate(bearer_token(handler.request, realm))
    handler.log_client_id = token.client_id
    handler.log_subject = token.subject
    if policy is not None:
        policy.check(token, realm)
    return token
