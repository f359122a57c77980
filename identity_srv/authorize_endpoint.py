"""The authorization endpoint (`/connect/authorize`) and its resumption after sign-in.

The endpoint checks the request, then decides with the browser's session:

1. no session, `prompt=login`, or a session older than `max_age`: sign-in is
   needed (with `prompt=none`: the error `login_required`);
2. a client that requires consent the user has not given, or `prompt=consent`:
   consent is needed (with `prompt=none`: `consent_required`);
3. otherwise a code is issued and the browser goes back to the client.

When the user is needed, the request waits in Redis as an interaction and the
login or consent page resumes it at `/connect/authorize/resume?authz=<id>`.
"""

from __future__ import annotations

import logging
import secrets
import time
from urllib.parse import urlencode

from .authorization import (
    AuthorizationError, AuthorizationRequest, InvalidAuthorizationTarget, parse_authorization_request,
    redirect_with,
)
from .codes import CodeGrant
from .interactions import Interaction
from .pages import CONSENT_PATH, LOGIN_PATH, PageHandler, PageNotAllowed
from .sessions import Session
from .users import User

audit_log = logging.getLogger("identity_srv.audit")


def _decode(arguments: dict[str, list[bytes]]) -> dict[str, list[str]]:
    try:
        return {name: [value.decode("utf-8") for value in values] for name, values in arguments.items()}
    except UnicodeDecodeError:
        raise PageNotAllowed("the request parameters are not valid UTF-8") from None


class AuthorizationFlowHandler(PageHandler):
    """The decision and the redirects shared by the endpoint and its resumption."""

    def redirect_error(self, error: AuthorizationError) -> None:
        # RFC 9207: `iss` names the provider that sent the response, which defeats mix-up.
        audit_log.info("authorization error sent to client: error=%s description=%s", error.error,
                       error.description)
        self.redirect(redirect_with(error.redirect_uri, {
            "error": error.error, "error_description": error.description, "state": error.state,
            "iss": self.provider.issuer}))

    def fail(self, request: AuthorizationRequest, error: str, description: str) -> None:
        self.redirect_error(AuthorizationError(error, description, request.redirect_uri, request.state))

    async def decide(self, request: AuthorizationRequest, interaction_id: str | None = None,
                     interaction: Interaction | None = None) -> None:
        """Send the browser to sign-in, to consent, or back to the client with a code."""
        _, session = await self.current_session()
        if self._needs_login(request, session, interaction):
            if "none" in request.prompt:
                return self.fail(request, "login_required", "the user is not signed in")
            await self._park(request, interaction_id, interaction, LOGIN_PATH)
            return None

        client = self.provider.registry.clients[request.client_id]
        if await self._needs_consent(request, session, interaction, client.require_consent):
            if "none" in request.prompt:
                return self.fail(request, "consent_required", "the user has not consented")
            await self._park(request, interaction_id, interaction, CONSENT_PATH)
            return None

        user = await self.provider.users.find_by_subject(session.sub)
        if user is None:
            # The account is gone; the session must not outlive it.
            session_id, _ = await self.current_session()
            await self.provider.sessions.end(session_id)
            self.clear_session_cookie()
            return self.fail(request, "login_required", "the user must sign in again")

        if interaction_id is not None:
            await self.provider.interactions.finish(interaction_id)
        await self._issue_code(request, session, user)
        return None

    def _needs_login(self, request: AuthorizationRequest, session: Session | None,
                     interaction: Interaction | None) -> bool:
        if session is None:
            return True
        signed_in_for_this = interaction is not None and interaction.login_sid == session.sid
        if "login" in request.prompt and not signed_in_for_this:
            return True
        # OpenID Connect Core §3.1.2.1: max_age is the allowable time since the user
        # last actively authenticated.
        if request.max_age is not None and time.time() - session.auth_time > request.max_age:
            return not signed_in_for_this
        return False

    async def _needs_consent(self, request: AuthorizationRequest, session: Session,
                             interaction: Interaction | None, required: bool) -> bool:
        consented_for_this = interaction is not None and interaction.consent_sid == session.sid
        if consented_for_this:
            return False
        if "consent" in request.prompt:
            return True
        if not required:
            return False
        return not await self.provider.consents.covers(session.sub, request.client_id, request.scopes)

    async def _park(self, request: AuthorizationRequest, interaction_id: str | None,
                    interaction: Interaction | None, page: str) -> None:
        if interaction_id is None or interaction is None:
            interaction_id = await self.provider.interactions.save(Interaction(request=request))
        self.redirect(f"{page}?{urlencode({'authz': interaction_id})}")

    async def _issue_code(self, request: AuthorizationRequest, session: Session, user: User) -> None:
        grant = CodeGrant(
            grant_id=secrets.token_urlsafe(16), client_id=request.client_id,
            redirect_uri=request.redirect_uri, code_challenge=request.code_challenge,
            scope=" ".join(request.scopes), sub=session.sub, sid=session.sid, auth_time=session.auth_time,
            amr=session.amr, nonce=request.nonce, username=user.username, user_claims=user.claims,
        )
        code = await self.provider.codes.issue(grant)
        await self.provider.sessions.add_client(session.sid, request.client_id)
        self.log_client_id = request.client_id
        self.log_subject = session.sub
        audit_log.info("authorization code issued: client=%s sub=%s grant=%s scope=%s", request.client_id,
                       session.sub, grant.grant_id, grant.scope)
        self.redirect(redirect_with(request.redirect_uri, {
            "code": code, "state": request.state, "iss": self.provider.issuer}))


class AuthorizeHandler(AuthorizationFlowHandler):
    """`GET` or `POST /connect/authorize` (OpenID Connect Core §3.1.2.1 allows both)."""

    def check_xsrf_cookie(self) -> None:
        # The authorization request comes from the client's site, so it cannot
        # carry this provider's XSRF token. It changes nothing without the user:
        # a code goes only to the client's registered redirect URI.
        return None

    async def get(self) -> None:
        await self._authorize(self.request.query_arguments)

    async def post(self) -> None:
        await self._authorize(self.request.body_arguments)

    async def _authorize(self, arguments: dict[str, list[bytes]]) -> None:
        try:
            request = parse_authorization_request(self.provider.registry, _decode(arguments))
        except InvalidAuthorizationTarget as exc:
            self.app_log.warning("authorization request rejected without redirect: %s (rid=%s)",
                                 exc.description, self.request_id)
            self.render_error_page(400, "This sign-in request is invalid", exc.description)
            return
        except AuthorizationError as exc:
            self.redirect_error(exc)
            return
        self.log_client_id = request.client_id
        await self.decide(request)


class ResumeHandler(AuthorizationFlowHandler):
    """`GET /connect/authorize/resume?authz=<id>`: continue after the login or consent page."""

    async def get(self) -> None:
        interaction_id = self.get_query_argument("authz", "")
        interaction = await self.provider.interactions.load(interaction_id)
        if interaction is None:
            self.render_error_page(400, "This sign-in request has expired",
                                   "Return to the application and sign in again.")
            return
        self.log_client_id = interaction.request.client_id
        await self.decide(interaction.request, interaction_id, interaction)
