"""The sign-in form (`/account/login`): password check, throttling, and a new session.

A failed attempt gets the same response whether the username exists or not: the
same message, the same status, and one bcrypt verification either way. Failures
are counted per username and per client address (`login_throttle`); past the
limits the form answers 429 with `Retry-After` before it checks any password.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from .authorization import AuthorizationError
from .authorize_endpoint import AuthorizationFlowHandler
from .interactions import Interaction
from .pages import LOGIN_PATH, RESUME_PATH

audit_log = logging.getLogger("identity_srv.audit")

INVALID_CREDENTIALS = "Invalid username or password."
MAX_USERNAME_LENGTH = 64
MAX_PASSWORD_LENGTH = 1024


class LoginHandler(AuthorizationFlowHandler):
    async def _interaction(self, interaction_id: str) -> Interaction | None:
        interaction = await self.provider.interactions.load(interaction_id)
        if interaction is None:
            self.render_error_page(400, "This sign-in request has expired",
                                   "Return to the application and sign in again.")
        return interaction

    def _show_form(self, interaction_id: str, interaction: Interaction, status: int = 200,
                   message: str = "", username: str = "") -> None:
        client = self.provider.registry.clients[interaction.request.client_id]
        self.set_status(status)
        self.render("login.html", client_name=client.name, interaction_id=interaction_id, message=message,
                    username=username or interaction.request.login_hint or "", action=LOGIN_PATH)

    async def get(self) -> None:
        interaction_id = self.get_query_argument("authz", "")
        interaction = await self._interaction(interaction_id)
        if interaction is not None:
            self._show_form(interaction_id, interaction)

    async def post(self) -> None:
        interaction_id = self.get_body_argument("authz", "")
        interaction = await self._interaction(interaction_id)
        if interaction is None:
            return
        request = interaction.request
        if self.get_body_argument("action", "login") == "cancel":
            await self.provider.interactions.finish(interaction_id)
            self.redirect_error(AuthorizationError("access_denied", "the user cancelled the sign-in",
                                                   request.redirect_uri, request.state))
            return

        repeated = [name for name in ("username", "password", "authz", "remember")
                    if len(self.get_body_arguments(name)) > 1]
        if repeated:
            self._show_form(interaction_id, interaction, 400, f"The form field {repeated[0]} was sent twice.")
            return
        username = self.get_body_argument("username", "").strip()[:MAX_USERNAME_LENGTH]
        password = self.get_body_argument("password", "")[:MAX_PASSWORD_LENGTH]
        address = self.client_address()
        if not username or not password:
            self._show_form(interaction_id, interaction, 400, "Enter your username and password.", username)
            return

        throttle = self.provider.login_throttle
        wait = await throttle.retry_after(username, address)
        if wait:
            self._reject_throttled(interaction_id, interaction, username, wait)
            return

        user = await self.provider.users.find_by_username(username)
        valid = await self.provider.hasher.verify(password, user.password_hash if user else None)
        if user is None or not valid:
            wait = await throttle.record_failure(username, address)
            audit_log.warning("sign-in failed: client=%s address=%s known_user=%s", request.client_id,
                              address, user is not None)
            if wait:
                self._reject_throttled(interaction_id, interaction, username, wait)
            else:
                self._show_form(interaction_id, interaction, 401, INVALID_CREDENTIALS, username)
            return

        await throttle.record_success(username)
        await self._start_session(interaction_id, interaction, user.sub)

    def _reject_throttled(self, interaction_id: str, interaction: Interaction, username: str,
                          wait: int) -> None:
        self.set_header("Retry-After", str(wait))
        self._show_form(interaction_id, interaction, 429,
                        f"Too many failed sign-ins. Try again in {wait} seconds.", username)

    async def _start_session(self, interaction_id: str, interaction: Interaction, sub: str) -> None:
        # A new session id at every sign-in: a cookie planted before sign-in
        # (session fixation) opens nothing afterwards.
        old_session_id, _ = await self.current_session()
        if old_session_id:
            await self.provider.sessions.end(old_session_id)
        remember = self.get_body_argument("remember", "") == "1"
        session_id, session = await self.provider.sessions.create(sub, ("pwd",), remember)
        self.set_session_cookie(session_id, remember)
        await self.provider.interactions.update(interaction_id, interaction, login_sid=session.sid)
        self.log_subject = sub
        audit_log.info("sign-in succeeded: client=%s sub=%s sid=%s remember=%s", interaction.request.client_id,
                       sub, session.sid, remember)
        self.redirect(f"{RESUME_PATH}?{urlencode({'authz': interaction_id})}")
