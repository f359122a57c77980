"""`POST /backchannel-logout`: the provider ends sessions (OpenID Connect Back-Channel Logout 1.0).

The provider POSTs a form with one `logout_token` when a user signs out there,
from this application or any other. A valid token ends the sessions of its `sid`
(only those of its `sub` when it has both), or every session of its `sub` when
it has no `sid`, and the response is 200 with
an empty body. An invalid request gets 400 `invalid_request` as JSON (§2.8). A
token whose `jti` was already used gets 400 too: its first use ended the
sessions already. Responses are never cached.

The request comes from the provider's server, not from a browser, so it has no
XSRF token: the signed logout token is what authenticates it.
"""

from __future__ import annotations

import logging

from servicekit.web import BaseHandler

from .errors import InvalidLogoutToken
from .relying_party import RelyingParty

audit = logging.getLogger("webclient_srv.audit")

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


class BackchannelLogoutHandler(BaseHandler):
    def initialize(self, relying_party: RelyingParty) -> None:
        self.rp = relying_party

    def check_xsrf_cookie(self) -> None:
        """Skip Tornado's XSRF check: the provider's server sends no cookie, and the token is signed."""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    async def post(self) -> None:
        token = self._logout_token()
        claims = await self.rp.logout_tokens.validate(token)
        sid, sub = claims.get("sid"), claims.get("sub")
        if await self.rp.sessions.logout_token_used(claims["jti"]):
            raise InvalidLogoutToken("the logout token was already used",
                                     log_detail=f"logout token jti reused (sub={sub})")
        # The jti is recorded only after the sessions ended, so a token whose first
        # use failed half-way still works when the provider sends it again. Two
        # deliveries of one token at the same moment both end the same sessions.
        ended = await self.rp.sessions.end_for_logout(sid=sid, sub=sub)
        await self.rp.sessions.record_logout_token(claims["jti"], self.rp.logout_tokens.replay_window(claims))
        self.log_subject = sub
        audit.info("back-channel logout sub=%s sid=%s sessions_ended=%d", sub or "-", sid or "-", ended)
        self.set_status(200)
        self.finish()

    def _logout_token(self) -> str:
        media_type = self.request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        if media_type != FORM_MEDIA_TYPE:
            raise InvalidLogoutToken(f"the request body must be {FORM_MEDIA_TYPE}")
        if "logout_token" in self.request.query_arguments:
            raise InvalidLogoutToken("logout_token belongs in the request body, not in the URL")
        values = self.request.body_arguments.get("logout_token", [])
        if len(values) != 1 or not values[0]:
            raise InvalidLogoutToken("the request body must contain exactly one logout_token")
        try:
            return values[0].decode("ascii")
        except UnicodeDecodeError:
            raise InvalidLogoutToken("the logout token is not a JWT") from None
