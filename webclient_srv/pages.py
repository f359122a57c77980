"""The base of every HTML page: session loading, security headers, CSRF and error pages.

Every page is rendered from `templates/` with autoescaping. Forms carry Tornado's
`_xsrf` token, a double submit: a cookie and a form field that must match.
Tornado checks it before any POST handler runs, and a missing or wrong token
gets a 403 page. Errors of any kind become an HTML page with a status, a title,
a message for the person and the request id, never a stack trace.
"""

from __future__ import annotations

import functools
import http
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import tornado.web

from servicekit.errors import HttpProblem
from servicekit.stores import UNAVAILABLE_ERRORS, StoreUnavailable
from servicekit.web import BaseHandler

from .errors import PageProblem
from .movies_api import ApiUnauthorized
from .relying_party import RelyingParty, SignInRequired
from .sessions import Session, SessionStore, new_cookie_value

SIGN_IN_COOKIE = "webclient_signin"
SIGN_OUT_COOKIE = "webclient_signout"

GENERIC_TEXT = {
    403: "This request was refused. If you submitted a form, reload the page and submit it again.",
    404: "There is no page at this address.",
    405: "This page does not accept that kind of request.",
    413: "The request is too large.",
}


def content_security_policy(issuer: str) -> str:
    """Return the page CSP: scripts and styles from this origin only, posters from the web.

    `form-action` names the provider too, because browsers apply it to the redirect
    that follows the sign-out form.
    """
    provider = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(issuer))
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: http:; "
            f"form-action 'self' {provider}; frame-ancestors 'none'; base-uri 'none'")


class PageHandler(BaseHandler):
    """Loads the session in `prepare`; subclasses read `self.user_session`."""

    user_session: Session | None = None
    session_cookie: str | None = None

    def initialize(self, relying_party: RelyingParty) -> None:
        self.rp = relying_party
        self.sessions: SessionStore = relying_party.sessions

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Content-Security-Policy", content_security_policy(self.settings["issuer"]))
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")

    def compute_etag(self) -> str | None:
        # Pages are per user and never cached, so an ETag would only help probing.
        return None

    async def prepare(self) -> None:
        super().prepare()
        cookie = self.get_cookie(self.settings["session_cookie"])
        if cookie:
            self.user_session = await self.sessions.get(cookie)
            self.session_cookie = cookie if self.user_session else None
        if self.user_session is not None:
            self.log_subject = self.user_session.sub

    def audit_log(self, message: str, *args: Any) -> None:
        logging.getLogger(f"{self.settings['service']}.audit").info(message + " (rid=%s)", *args, self.request_id)

    # -- cookies -------------------------------------------------------------

    def set_private_cookie(self, name: str, value: str, max_age: int | None = None) -> None:
        """Set an HttpOnly, SameSite=Lax cookie, Secure when the public URL is https."""
        self.set_cookie(name, value, path="/", httponly=True, samesite="Lax", max_age=max_age,
                        secure=self.settings["secure_cookies"])

    def browser_cookie(self) -> str:
        """Return the pre-session cookie that binds pending sign-ins to this browser, setting it if new."""
        value = self.get_cookie(SIGN_IN_COOKIE)
        if not value or len(value) > 100:
            value = new_cookie_value()
            self.set_private_cookie(SIGN_IN_COOKIE, value, max_age=self.settings["pending_lifetime"])
        return value

    # -- signed-in helpers ---------------------------------------------------

    @property
    def is_admin(self) -> bool:
        return self.user_session is not None and self.settings["admin_role"] in self.user_session.roles

    async def send_to_sign_in(self, return_url: str) -> None:
        """Start a sign-in that comes back to `return_url`, a path on this application."""
        location = await self.rp.start_sign_in(self.browser_cookie(), return_url)
        self.redirect(location)

    async def access_token(self) -> str:
        """Return a current access token of the signed-in user, refreshing it if needed."""
        if self.user_session is None or self.session_cookie is None:
            raise SignInRequired("not signed in")
        self.user_session = await self.rp.fresh_session(self.session_cookie, self.user_session)
        return self.user_session.access_token

    async def end_local_session(self) -> None:
        if self.session_cookie:
            await self.sessions.delete(self.session_cookie)
        self.clear_cookie(self.settings["session_cookie"], path="/")
        self.user_session = None
        self.session_cookie = None

    # -- rendering -----------------------------------------------------------

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace.update(user=self.user_session, is_admin=self.is_admin, notice=None)
        return namespace

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs["exc_info"][1] if "exc_info" in kwargs else None
        self.clear_header("Content-Type")
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        error, title, text = "server_error", "Something went wrong", "An unexpected error occurred."
        if isinstance(exc, PageProblem):
            error, title, text = exc.error, exc.title, exc.description
        elif isinstance(exc, HttpProblem):
            error, title, text = exc.error, http.HTTPStatus(exc.status).phrase, exc.description
        elif isinstance(exc, (StoreUnavailable, *UNAVAILABLE_ERRORS)):
            status_code = 503
            self.set_header("Retry-After", "5")
            error, title, text = ("temporarily_unavailable", "Temporarily unavailable",
                                  "The session store is unavailable. Try again in a moment.")
        elif isinstance(exc, tornado.web.HTTPError) or exc is None:
            title = _reason_phrase(status_code)
            error = title.lower().replace(" ", "_")
            text = GENERIC_TEXT.get(status_code, "The request could not be completed.")
        if isinstance(exc, HttpProblem):
            for name, value in exc.headers.items():
                self.set_header(name, value)
        self.set_status(status_code)
        self.render("error.html", status=status_code, error=error, title=title, text=text,
                    request_id=getattr(self, "request_id", "-"),
                    extra=exc.extra if isinstance(exc, HttpProblem) else {})


def _reason_phrase(status_code: int) -> str:
    try:
        return http.HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


PageMethod = Callable[..., Awaitable[None]]


def signed_in(method: PageMethod) -> PageMethod:
    """Run a page method only for a signed-in user; send everyone else to the sign-in.

    When the session can no longer get an access token (the refresh token was
    rejected or the API returns 401), the session ends and a new sign-in starts
    that returns to this page's address, so the page the user wanted is not lost.
    Every POST form's address also shows that form on GET.
    """

    @functools.wraps(method)
    async def wrapper(self: PageHandler, *args: Any, **kwargs: Any) -> None:
        if self.user_session is None:
            await self.send_to_sign_in(self.request.uri)
            return
        try:
            await method(self, *args, **kwargs)
        except (SignInRequired, ApiUnauthorized) as exc:
            if self._finished:
                raise
            self.app_log.info("sign-in required again for %s %s: %s (rid=%s)", self.request.method,
                              self.request.path, exc, self.request_id)
            await self.end_local_session()
            await self.send_to_sign_in(self.request.uri)

    return wrapper
