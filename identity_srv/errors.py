"""The OAuth 2 error table: one `HttpProblem` subclass per error code.

Codes and statuses are those of RFC 6749 §5.2, used by the token, introspection
(RFC 7662 §2.3) and revocation (RFC 7009 §2.2.1) endpoints. The request boundary in
`servicekit.web` writes each as JSON `{"error", "error_description"}` with its status
and headers and no stack trace. Errors that must never be sent through a redirect
(a later authorization endpoint needs this) set `redirectable = False`.
"""

from __future__ import annotations

from servicekit.errors import HttpProblem

# Realm of the `WWW-Authenticate: Basic` challenge on 401 responses.
REALM = "identity_srv"


class OAuthError(HttpProblem):
    status = 400
    error = "invalid_request"
    # False for errors about the client or the redirect URI itself, which an
    # authorization endpoint must show to the user instead of redirecting.
    redirectable = True


class InvalidRequest(OAuthError):
    """A required parameter is missing, repeated or malformed, or the body is not a form."""

    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed: unknown client, wrong or missing secret, unsupported method.

    Returns 401 with a `Basic` challenge. RFC 6749 §5.2 requires the challenge when
    the client used the Authorization header, and RFC 9110 §15.5.2 requires one on
    every 401, so it is sent whichever method the client tried.
    """

    status = 401
    error = "invalid_client"
    redirectable = False

    def __init__(self, description: str = "client authentication failed", **kwargs):
        super().__init__(description, **kwargs)
        self.headers.setdefault("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')


class InvalidGrant(OAuthError):
    """The grant or token is invalid, expired, revoked, or was issued to another client."""

    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    """The authenticated client may not use this grant type."""

    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    """The provider does not serve this grant type."""

    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    """The requested scope is malformed, unknown, or beyond what the client was granted."""

    error = "invalid_scope"
