"""The errors webclient_srv shows as HTML pages, one class per error code.

Each carries the status, a machine-readable `error` code (also in the page, for
support and tests), a `title` and a `description` written for the person in the
browser. `log_detail` is for the operator and never contains a token.
"""

from __future__ import annotations

from servicekit.errors import HttpProblem


class PageProblem(HttpProblem):
    """An expected error, rendered as a page with `title` and `description`."""

    title = "Something went wrong"


class InvalidCallback(PageProblem):
    """400: the callback lacks `code` or `state`, or carries an `iss` of another provider."""

    status = 400
    error = "invalid_callback"
    title = "Sign-in failed"


class StateMismatch(PageProblem):
    """400: the callback's `state` is not the one this browser's sign-in sent (RFC 6749 §10.12)."""

    status = 400
    error = "invalid_state"
    title = "Sign-in failed"


class UnknownSignIn(PageProblem):
    """400: no sign-in is pending for this browser: it was completed already, or it expired."""

    status = 400
    error = "unknown_sign_in"
    title = "Sign-in link already used or expired"


class ProviderRejected(PageProblem):
    """400: the provider redirected back with an `error` (RFC 6749 §4.1.2.1)."""

    status = 400
    error = "provider_error"
    title = "Sign-in was not completed"


class InvalidIdToken(PageProblem):
    """502: the provider's ID token failed validation, so nobody is signed in."""

    status = 502
    error = "invalid_id_token"
    title = "Sign-in failed"


class TokenRequestFailed(PageProblem):
    """502: the token endpoint rejected the code or sent an unusable response."""

    status = 502
    error = "token_request_failed"
    title = "Sign-in failed"


class ProviderUnavailable(PageProblem):
    """503: the identity provider did not respond in time or sent a server error."""

    status = 503
    error = "provider_unavailable"
    title = "Sign-in is unavailable"


class SessionBusy(PageProblem):
    """503: another request of this session held the refresh lock for too long."""

    status = 503
    error = "session_busy"
    title = "Please try again"


class Forbidden(PageProblem):
    """403: the signed-in user may not see this page."""

    status = 403
    error = "forbidden"
    title = "Access denied"


class MovieNotFound(PageProblem):
    status = 404
    error = "not_found"
    title = "Movie not found"


class ApiFailed(PageProblem):
    """A movies API call failed; `status` is the one the page is sent with."""

    error = "api_error"
    title = "The movies service could not complete the request"

    def __init__(self, status: int, description: str, *, log_detail: str | None = None):
        self.status = status
        super().__init__(description, log_detail=log_detail)


class InvalidLogoutToken(HttpProblem):
    """400: a back-channel logout request without a valid logout token (JSON, not a page).

    OpenID Connect Back-Channel Logout 1.0 §2.8 requires 400 for an invalid
    request and allows an OAuth 2.0 error body.
    """

    status = 400
    error = "invalid_request"
