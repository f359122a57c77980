"""RP-initiated logout at the end-session endpoint (OpenID Connect RP-Initiated Logout 1.0).

The request may carry `id_token_hint`, `client_id`, `post_logout_redirect_uri` and
`state`. The provider redirects to `post_logout_redirect_uri` only when that exact
string is registered for the client that the hint or `client_id` names. Any other
value gets an error page, so the endpoint cannot serve as an open redirector.

A valid `id_token_hint` for the current session proves the request comes from
that session's client, so the user is signed out at once. Without one, a page
asks the user to confirm with a form carrying the XSRF token: a link on another
site cannot sign the user out (logout CSRF).

Ending the session revokes the refresh tokens issued in it and sends back-channel
logout tokens to its clients.
"""

from __future__ import annotations

import logging
from typing import Any

from .authorization import redirect_with
from .backchannel import notify_clients
from .clients import Client
from .discovery import END_SESSION_PATH
from .id_tokens import verify_id_token_hint
from .pages import PageHandler, PageNotAllowed

audit_log = logging.getLogger("identity_srv.audit")


_CARRIED = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state")


class EndSessionHandler(PageHandler):
    def check_xsrf_cookie(self) -> None:
        # The client's own request cannot carry this provider's token; only the
        # confirmation form (confirm=1) is checked, in `_handle`.
        return None

    async def get(self) -> None:
        await self._handle(self._params(self.get_query_argument))

    async def post(self) -> None:
        if self.get_body_argument("confirm", "") == "1":
            super().check_xsrf_cookie()
            await self._handle(self._params(self.get_body_argument), confirmed=True)
        else:
            await self._handle(self._params(self.get_body_argument))

    def _params(self, getter) -> dict[str, str]:
        return {name: value for name in _CARRIED if (value := getter(name, ""))}

    def _client_and_hint(self, params: dict[str, str]) -> tuple[Client | None, dict[str, Any] | None]:
        hint = None
        if "id_token_hint" in params:
            hint = verify_id_token_hint(self.provider.keyring, self.provider.issuer, params["id_token_hint"])
            if hint is None:
                raise PageNotAllowed("the id_token_hint is not a valid ID token from this provider")
        client_id = params.get("client_id")
        if hint is not None:
            audience = hint["aud"] if isinstance(hint["aud"], list) else [hint["aud"]]
            if client_id is None and len(audience) == 1:
                client_id = audience[0]
            if client_id not in audience:
                raise PageNotAllowed("client_id does not match the id_token_hint")
        client = self.provider.registry.clients.get(client_id) if client_id else None
        if client_id and client is None:
            raise PageNotAllowed("the client_id is unknown")
        return client, hint

    async def _handle(self, params: dict[str, str], confirmed: bool = False) -> None:
        client, hint = self._client_and_hint(params)
        target = params.get("post_logout_redirect_uri")
        if target is not None and (client is None or target not in client.post_logout_redirect_uris):
            raise PageNotAllowed("the post_logout_redirect_uri is not registered for this client")

        session_id, session = await self.current_session()
        hint_matches = hint is not None and session is not None and hint.get("sid") == session.sid
        if session is not None and not (confirmed or hint_matches):
            carried = [(name, value) for name, value in params.items()]
            self.render("logout_confirm.html", client_name=client.name if client else "",
                        carried=carried, action=END_SESSION_PATH)
            return

        if session is not None:
            await self._end(session_id, session)
        if target is not None:
            self.redirect(redirect_with(target, {"state": params.get("state")}))
        else:
            self.render("logged_out.html")

    async def _end(self, session_id: str, session) -> None:
        ended = await self.provider.sessions.end(session_id) or session
        for family_id in ended.families:
            await self.provider.refresh_tokens.revoke_family(family_id)
        self.clear_session_cookie()
        self.log_subject = ended.sub
        audit_log.info("signed out: sub=%s sid=%s refresh_families_revoked=%d", ended.sub, ended.sid,
                       len(ended.families))
        await notify_clients(self.provider, ended)
