"""The base of the provider's HTML pages: security headers, the session cookie, error pages.

Every page is sent with a Content-Security-Policy that allows only the provider's
own stylesheet, refuses framing (clickjacking), sends no Referer (the URL may carry
an interaction id), and is never cached. Forms carry Tornado's XSRF token; the
application turns `xsrf_cookies` on, and only the pages check it.
"""

from __future__ import annotations

import logging
from typing import Any

import tornado.web

from servicekit.errors import HttpProblem
from servicekit.stores import UNAVAILABLE_ERRORS, StoreUnavailable
from servicekit.web import BaseHandler

from .provider import Provider
from .sessions import Session

audit_log = logging.getLogger("identity_srv.audit")

CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'")

LOGIN_PATH = "/account/login"
CONSENT_PATH = "/account/consent"
RESUME_PATH = "/connect/authorize/resume"


class PageHandler(BaseHandler):
    """An HTML page of the provider."""

    def initialize(self, provider: Provider) -> None:
        self.provider = provider

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Pragma", "no-cache")

    @property
    def cookie_name(self) -> str:
        return self.provider.settings.signin.cookie_name

    @property
    def secure_cookies(self) -> bool:
        return self.provider.issuer.startswith("https://")

    async def current_session(self) -> tuple[str | None, Session | None]:
        """Return the session cookie value and the live session it opens, if any."""
        session_id = self.get_cookie(self.cookie_name)
        if not session_id or len(session_id) > 128:
            return None, None
        return session_id, await self.provider.sessions.get(session_id)

    def set_session_cookie(self, session_id: str, remember: bool) -> None:
        # A remembered session survives a browser restart; otherwise the cookie is
        # a session cookie and Redis ends the session after its lifetime anyway.
        expires_days = self.provider.settings.signin.remember_lifetime / 86400 if remember else None
        self.set_cookie(self.cookie_name, session_id, path="/", httponly=True, samesite="Lax",
                        secure=self.secure_cookies, expires_days=expires_days)

    def clear_session_cookie(self) -> None:
        self.clear_cookie(self.cookie_name, path="/", httponly=True, samesite="Lax", secure=self.secure_cookies)

    def client_address(self) -> str:
        return self.request.remote_ip or "-"

    def render_error_page(self, status: int, heading: str, message: str) -> None:
        # The error boundary may have set a JSON type already; an HTML page says it is HTML.
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_status(status)
        self.render("error.html", heading=heading, message=message, request_id=self.request_id)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs["exc_info"][1] if "exc_info" in kwargs else None
        if isinstance(exc, HttpProblem):
            for name, value in exc.headers.items():
                self.set_header(name, value)
            self.render_error_page(exc.status, "Something is wrong with this request", exc.description)
        elif isinstance(exc, (StoreUnavailable, *UNAVAILABLE_ERRORS)):
            self.set_header("Retry-After", "5")
            self.render_error_page(503, "Temporarily unavailable",
                                   "The sign-in service cannot reach its storage right now. Try again in a moment.")
        elif isinstance(exc, tornado.web.HTTPError) or exc is None:
            self.render_error_page(status_code, "Something is wrong with this request",
                                   self._reason or "The request could not be handled.")
        else:
            self.render_error_page(500, "Something went wrong", "An unexpected error occurred.")


class PageNotAllowed(HttpProblem):
    """400 on a page: the request cannot be served and must not be redirected anywhere."""

    status = 400
    error = "invalid_request"
