"""The consent page (`/account/consent`) for clients configured to require consent."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from .authorization import AuthorizationError
from .authorize_endpoint import AuthorizationFlowHandler
from .interactions import Interaction
from .pages import CONSENT_PATH, RESUME_PATH

audit_log = logging.getLogger("identity_srv.audit")

# The permission each scope gives the client, in the words shown to the user.
SCOPE_DESCRIPTIONS = {
    "openid": "know who you are",
    "profile": "see your name and website",
    "email": "see your email address",
    "address": "see your postal address",
    "roles": "see your roles",
    "offline_access": "stay signed in for you when you are away",
}


class ConsentHandler(AuthorizationFlowHandler):
    async def _load(self, interaction_id: str) -> Interaction | None:
        interaction = await self.provider.interactions.load(interaction_id)
        _, session = await self.current_session()
        if interaction is None or session is None:
            self.render_error_page(400, "This sign-in request has expired",
                                   "Return to the application and sign in again.")
            return None
        return interaction

    async def get(self) -> None:
        interaction_id = self.get_query_argument("authz", "")
        interaction = await self._load(interaction_id)
        if interaction is None:
            return
        client = self.provider.registry.clients[interaction.request.client_id]
        scopes = [(scope, SCOPE_DESCRIPTIONS.get(scope, f"use the {scope} API for you"))
                  for scope in interaction.request.scopes]
        self.render("consent.html", client_name=client.name, scopes=scopes, interaction_id=interaction_id,
                    action=CONSENT_PATH)

    async def post(self) -> None:
        interaction_id = self.get_body_argument("authz", "")
        interaction = await self._load(interaction_id)
        if interaction is None:
            return
        request = interaction.request
        _, session = await self.current_session()
        if self.get_body_argument("decision", "") != "allow":
            await self.provider.interactions.finish(interaction_id)
            audit_log.info("consent denied: client=%s sub=%s", request.client_id, session.sub)
            self.redirect_error(AuthorizationError("access_denied", "the user denied the request",
                                                   request.redirect_uri, request.state))
            return
        await self.provider.consents.grant(session.sub, request.client_id, request.scopes)
        await self.provider.interactions.update(interaction_id, interaction, consent_sid=session.sid)
        audit_log.info("consent given: client=%s sub=%s scope=%s", request.client_id, session.sub,
                       " ".join(request.scopes))
        self.redirect(f"{RESUME_PATH}?{urlencode({'authz': interaction_id})}")
