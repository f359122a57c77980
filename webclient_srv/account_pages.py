"""The home page, "my claims" and the admin page."""

from __future__ import annotations

import datetime
from typing import Any

import jwt

from .errors import ApiFailed, Forbidden
from .movies_api import ApiUnauthorized
from .pages import PageHandler, signed_in

# Claims whose values are Unix times, shown as dates as well.
TIME_CLAIMS = ("exp", "iat", "nbf", "auth_time")


def readable_claims(claims: dict[str, Any]) -> list[tuple[str, str]]:
    """Return (name, text) rows; times also as UTC dates, structures as compact JSON-like text."""
    rows = []
    for name in sorted(claims):
        value = claims[name]
        if name in TIME_CLAIMS and isinstance(value, (int, float)) and not isinstance(value, bool):
            moment = datetime.datetime.fromtimestamp(value, datetime.UTC)
            text = f"{value} ({moment:%Y-%m-%d %H:%M:%S} UTC)"
        elif isinstance(value, list):
            text = ", ".join(str(item) for item in value)
        elif isinstance(value, dict):
            text = "; ".join(f"{key}: {item}" for key, item in value.items())
        else:
            text = str(value)
        rows.append((name, text))
    return rows


class HomeHandler(PageHandler):
    def get(self) -> None:
        signed_out = self.get_query_argument("signed_out", None) is not None and self.user_session is None
        self.render("home.html", notice="You are signed out." if signed_out else None)


class ClaimsHandler(PageHandler):
    """`GET /claims`: the ID token's claims and the access token's, decoded.

    Raw tokens are not shown: the page exists to show what the tokens say, and a
    raw access or refresh token on a screen or in a screenshot is a credential
    anyone could replay until it expires.
    """

    @signed_in
    async def get(self) -> None:
        access_token = await self.access_token()
        session = self.user_session
        assert session is not None
        # Decoded for display only: the gateway and the API validate it, not this page.
        access_claims = jwt.decode(access_token, options={"verify_signature": False})
        self.render("claims.html", id_claims=readable_claims(session.id_claims),
                    access_claims=readable_claims(access_claims),
                    has_refresh_token=session.refresh_token is not None)


class AdminHandler(PageHandler):
    """`GET /admin`: the UserInfo claims, for users with the admin role only (403 for others)."""

    @signed_in
    async def get(self) -> None:
        if not self.is_admin:
            raise Forbidden("This page is for administrators only.",
                            log_detail=f"sub {self.user_session.sub} without the admin role asked for /admin")
        status, claims = await self.rp.userinfo(await self.access_token())
        if status == 401:
            raise ApiUnauthorized("UserInfo returned 401")
        if status != 200 or claims is None:
            raise ApiFailed(502, "The identity provider did not return your profile.",
                            log_detail=f"UserInfo returned {status}")
        self.render("admin.html", claims=readable_claims(claims))
