"""The errors a resource server sends for a bearer token, as RFC 6750 §3 defines them.

Each 401 and 403 carries a `WWW-Authenticate: Bearer` challenge with the realm and,
except when the request carried no token at all, the `error` code and a short
`error_description`. The request boundary in `servicekit.web` writes the status,
the headers and the JSON body.
"""

from __future__ import annotations

import re

from ..errors import HttpProblem

# RFC 6750 §3: error_description and scope values may not contain `"` or `\`,
# and only printable ASCII is allowed.
_UNSAFE_CHALLENGE_CHARS = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')

# Seconds a client should wait before retrying when the provider's keys are unavailable.
PROVIDER_RETRY_AFTER = 5


def bearer_challenge(realm: str, error: str | None = None, description: str = "",
                     scope: str = "") -> str:
    """Build a `WWW-Authenticate` value: `Bearer realm="...", error="...", ...`."""
    params = [("realm", realm)]
    if error:
        params.append(("error", error))
        if description:
            params.append(("error_description", description))
    if scope:
        params.append(("scope", scope))
    return "Bearer " + ", ".join(f'{name}="{_UNSAFE_CHALLENGE_CHARS.sub("", value)}"'
                                 for name, value in params)


class BearerProblem(HttpProblem):
    """A bearer-token error whose response carries a `WWW-Authenticate` challenge."""

    def __init__(self, description: str, *, realm: str, scope: str = "",
                 log_detail: str | None = None):
        challenge = bearer_challenge(realm, self.challenge_error(), description, scope)
        super().__init__(description, headers={"WWW-Authenticate": challenge}, log_detail=log_detail)

    def challenge_error(self) -> str | None:
        return self.error


class MissingToken(BearerProblem):
    """401 for a request without a bearer token: the challenge has no error code (§3.1)."""

    status = 401
    error = "unauthorized"

    def challenge_error(self) -> str | None:
        return None


class InvalidToken(BearerProblem):
    """401 `invalid_token`: expired, revoked, malformed or otherwise not acceptable."""

    status = 401
    error = "invalid_token"


class InsufficientScope(BearerProblem):
    """403 `insufficient_scope`: a valid token without the scopes or claims the request needs."""

    status = 403
    error = "insufficient_scope"


class InvalidBearerRequest(BearerProblem):
    """400 `invalid_request`: a malformed Authorization header or a token sent twice."""

    status = 400
    error = "invalid_request"


class ProviderUnavailable(HttpProblem):
    """503: the identity provider's discovery document or JWKS could not be fetched.

    A token whose key is not cached cannot be judged then, so the client gets a
    retry hint instead of an `invalid_token` error.
    """

    status = 503
    error = "temporarily_unavailable"

    def __init__(self, log_detail: str):
        super().__init__("the identity provider's signing keys are unavailable; retry shortly",
                         headers={"Retry-After": str(PROVIDER_RETRY_AFTER)}, log_detail=log_detail)
