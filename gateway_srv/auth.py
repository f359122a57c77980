"""The authentication step of the gateway's request pipeline.

An `Authenticator` turns a request and a route's `AuthPolicy` into the validated
token's claims, or raises the RFC 6750 error (401 or 403 with `WWW-Authenticate`).
The proxy handler calls it for every route that has an `[routes.authentication]`
table, and for the admin endpoint.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

import tornado.web

from servicekit.errors import HttpProblem

from .routes import AuthPolicy

REALM = "gateway"


class Authenticator(Protocol):
    async def authenticate(self, handler: tornado.web.RequestHandler, policy: AuthPolicy) -> Mapping[str, Any]:
        """Return the claims of the request's valid access token that meets `policy`.

        Raises a 401 `HttpProblem` for a missing or invalid token and a 403 one for
        a token without the scopes or claim values the policy requires.
        """


class TokenValidationUnavailable(HttpProblem):
    status = 401
    error = "invalid_token"


class DenyingAuthenticator:
    """Reject every request: used while no token validator is configured."""

    async def authenticate(self, handler: tornado.web.RequestHandler, policy: AuthPolicy) -> Mapping[str, Any]:
        # TODO: validate tokens with servicekit.resource once it lands; until then deny.
        description = "token validation is not available on this gateway"
        raise TokenValidationUnavailable(
            description,
            headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token", '
                                         f'error_description="{description}"'},
            log_detail="request denied: no token validator configured")
