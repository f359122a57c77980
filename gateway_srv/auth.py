"""The authentication step of the gateway's request pipeline.

An `Authenticator` turns a request and a route's `Policy` into the validated
access token, or raises the RFC 6750 error. A missing or invalid token gets 401
with `WWW-Authenticate`, and a token without the scopes or claim values the route
requires gets 403 `insufficient_scope`. The proxy handler calls it for every route
with an `[routes.authentication]` table, and the admin endpoint calls it too.
"""

from __future__ import annotations

from typing import Protocol

import tornado.web

from servicekit.resource import AccessToken, AccessTokenValidator, Policy, authenticate


class Authenticator(Protocol):
    async def authenticate(self, handler: tornado.web.RequestHandler, policy: Policy) -> AccessToken:
        """Return the request's valid access token that meets `policy`, or raise a 4xx `HttpProblem`."""


class BearerAuthenticator:
    """Validate the `Authorization: Bearer` token with the shared resource-server toolkit.

    The token is checked against the issuer's JWKS and the deny list of revoked
    tokens, and its audience must be the validator's (`tokens.audience`).
    """

    def __init__(self, validator: AccessTokenValidator):
        self.validator = validator

    async def authenticate(self, handler: tornado.web.RequestHandler, policy: Policy) -> AccessToken:
        return await authenticate(handler, self.validator, policy)
