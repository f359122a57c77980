"""The OpenID Connect relying party: sign-in, callback, token refresh and logout.

Sign-in uses the authorization code flow with PKCE (S256), `state` and `nonce`
(RFC 9700 §2.1, OpenID Connect Core §3.1). The pending sign-in is kept server-side
under a pre-session cookie and can be completed once. Tokens never leave the
server: the browser gets a session cookie only.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, replace

from servicekit.resource import JwksCache

from .errors import (
    InvalidCallback,
    InvalidIdToken,
    ProviderRejected,
    SessionBusy,
    StateMismatch,
    UnknownSignIn,
)
from .oidc import pkce
from .oidc.id_token import IdTokenValidator
from .oidc.logout_token import LogoutTokenValidator
from .oidc.metadata import DISCOVERY_PATH, MetadataCache
from .oidc.token_client import RefreshRejected, TokenClient
from .sessions import PendingSignIn, PendingSignInStore, Session, SessionStore
from .settings import Settings

audit = logging.getLogger("webclient_srv.audit")

STATE_BYTES = 32
NONCE_BYTES = 32

# RFC 6749 §4.1.2.1 error codes and the message shown for each.
PROVIDER_ERRORS = {
    "access_denied": "The sign-in was cancelled or refused.",
    "login_required": "You need to sign in at the identity provider.",
    "consent_required": "The identity provider needs your consent first.",
    "interaction_required": "The identity provider needs you to complete the sign-in there.",
    "temporarily_unavailable": "The identity provider is busy. Try again in a moment.",
}
PROVIDER_ERROR_OTHER = "The identity provider could not complete the sign-in."

# RFC 6749 §4.1.2.1: error codes are printable ASCII without '"' and '\'.
_ERROR_CODE = re.compile(r"^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$")


def safe_return_url(value: str | None) -> str:
    """Return `value` when it is a path on this application, else "/".

    Only a path that starts with one "/" passes: "//host", "/\\host" and any URL
    with a scheme would send the browser elsewhere after the sign-in.
    """
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ord(char) < 0x20 or char == "\\" for char in value):
        return "/"
    parts = urllib.parse.urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


class SignInRequired(Exception):
    """The session has no usable tokens any more; the user must sign in again."""


@dataclass(frozen=True)
class CallbackResult:
    session: Session
    return_url: str


class RelyingParty:
    def __init__(self, settings: Settings, sessions: SessionStore, pending: PendingSignInStore):
        self.settings = settings
        self.oidc = settings.oidc
        self.issuer = settings.common.issuer
        self.sessions = sessions
        self.pending = pending
        self.metadata = MetadataCache(self.issuer, max_age=self.oidc.metadata_max_age,
                                      timeout=self.oidc.http_timeout)
        jwks = JwksCache(issuer=self.issuer, discovery_url=self.issuer + DISCOVERY_PATH,
                         allowed_algorithms=self.oidc.algorithms,
                         refetch_interval=self.oidc.jwks_refetch_interval,
                         max_age=self.oidc.metadata_max_age, http_timeout=self.oidc.http_timeout)
        self.id_tokens = IdTokenValidator(issuer=self.issuer, client_id=self.oidc.client_id,
                                          algorithms=self.oidc.algorithms, leeway=self.oidc.leeway, jwks=jwks)
        self.logout_tokens = LogoutTokenValidator(issuer=self.issuer, client_id=self.oidc.client_id,
                                                  algorithms=self.oidc.algorithms, leeway=self.oidc.leeway,
                                                  jwks=jwks)
        self.tokens = TokenClient(self.oidc.client_id, self.oidc.client_secret, self.oidc.http_timeout)

    # -- sign-in -------------------------------------------------------------

    async def start_sign_in(self, browser_cookie: str, return_url: str) -> str:
        """Record a pending sign-in and return the authorization request URL to redirect to."""
        metadata = await self.metadata.get()
        verifier = pkce.new_verifier()
        pending = PendingSignIn(state=secrets.token_urlsafe(STATE_BYTES), nonce=secrets.token_urlsafe(NONCE_BYTES),
                                code_verifier=verifier, return_url=safe_return_url(return_url),
                                created_at=time.time())
        await self.pending.add(browser_cookie, pending)
        query = {
            "response_type": "code",
            "client_id": self.oidc.client_id,
            "redirect_uri": self.oidc.redirect_uri,
            "scope": self.oidc.scope,
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": pkce.s256_challenge(verifier),
            "code_challenge_method": "S256",
        }
        return with_query(metadata.authorization_endpoint, query)

    async def finish_sign_in(self, browser_cookie: str | None, arguments: Mapping[str, str]) -> CallbackResult:
        """Check the authorization response, redeem the code and validate the ID token.

        Raises `ProviderRejected` for an `error` response, `InvalidCallback`,
        `UnknownSignIn` or `StateMismatch` for a response this browser did not
        ask for, and the errors of the token request and ID token validation.
        """
        metadata = await self.metadata.get()
        state = arguments.get("state")
        if not browser_cookie or not await self.pending.has_any(browser_cookie):
            raise UnknownSignIn("This sign-in was already completed, or it took too long. Start again.",
                                log_detail="callback without a pending sign-in (replayed or expired)")
        if not state:
            raise InvalidCallback("The identity provider's response is incomplete. Start again.",
                                  log_detail="callback without state")
        pending = await self.pending.take(browser_cookie, state)
        if pending is None:
            raise StateMismatch("The sign-in response does not belong to the sign-in this browser started. "
                                "Start again.", log_detail="callback state matches no pending sign-in")

        # RFC 9207 §2.4: a response that names an issuer must name ours (mix-up defence).
        issuer = arguments.get("iss")
        if issuer is not None and issuer != self.issuer:
            raise InvalidCallback("The sign-in response came from another identity provider. Start again.",
                                  log_detail=f"callback iss {issuer!r} is not the issuer")
        if issuer is None and metadata.authorization_response_iss_parameter_supported:
            raise InvalidCallback("The identity provider's response is incomplete. Start again.",
                                  log_detail="callback without iss although the provider sends it")

        error = arguments.get("error")
        if error:
            raise self._provider_error(error, pending.return_url)
        code = arguments.get("code")
        if not code:
            raise InvalidCallback("The identity provider's response is incomplete. Start again.",
                                  log_detail="callback without code")
        return CallbackResult(session=await self._redeem(metadata.token_endpoint, code, pending),
                              return_url=pending.return_url)

    def _provider_error(self, error: str, return_url: str) -> ProviderRejected:
        code = error if _ERROR_CODE.match(error) else "invalid_error_code"
        return ProviderRejected(PROVIDER_ERRORS.get(code, PROVIDER_ERROR_OTHER),
                                log_detail=f"the provider returned error={code}",
                                extra={"provider_error": code, "return_url": return_url})

    async def _redeem(self, token_endpoint: str, code: str, pending: PendingSignIn) -> Session:
        response = await self.tokens.exchange_code(token_endpoint, code=code, redirect_uri=self.oidc.redirect_uri,
                                                   code_verifier=pending.code_verifier)
        assert response.id_token is not None
        claims = await self.id_tokens.validate(response.id_token, nonce=pending.nonce,
                                               access_token=response.access_token)
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise InvalidIdToken("the identity provider's response could not be verified, so you are not signed in",
                                 log_detail="ID token sub is not a non-empty string")
        audit.info("sign-in completed sub=%s sid=%s", claims["sub"], claims.get("sid", "-"))
        return Session(sub=claims["sub"], id_token=response.id_token, id_claims=claims,
                       access_token=response.access_token, access_token_expires_at=response.expires_at,
                       refresh_token=response.refresh_token)

    # -- refresh -------------------------------------------------------------

    async def fresh_session(self, cookie_value: str, session: Session) -> Session:
        """Return the session with an access token valid for at least `refresh_margin` seconds.

        Refreshes under the session's Redis lock and re-reads the session once the
        lock is held, so two parallel requests never send the same refresh token
        (the provider would take the second use for theft and revoke the family).
        Raises `SignInRequired` when the session cannot get a new token.
        """
        margin = self.settings.session.refresh_margin
        if not session.expires_within(margin):
            return session
        async with self.sessions.refresh_lock(cookie_value, self.settings.session.refresh_lock_timeout) as locked:
            if not locked:
                # The session may still be fine, so it is kept; this request alone fails.
                raise SessionBusy("Another page of yours is still renewing your sign-in. Reload this page.",
                                  headers={"Retry-After": "1"},
                                  log_detail="timed out waiting for the session's refresh lock")
            current = await self.sessions.get(cookie_value)
            if current is None:
                raise SignInRequired("the session ended while waiting for the refresh lock")
            if not current.expires_within(margin):
                return current
            refreshed = await self._refresh(current)
            if not await self.sessions.save(cookie_value, refreshed):
                raise SignInRequired("the session ended or its lifetime is over")
            return refreshed

    async def _refresh(self, session: Session) -> Session:
        if session.refresh_token is None:
            raise SignInRequired("the access token expires and there is no refresh token")
        metadata = await self.metadata.get()
        try:
            response = await self.tokens.refresh(metadata.token_endpoint, session.refresh_token)
        except RefreshRejected as exc:
            audit.warning("refresh rejected sub=%s: %s", session.sub, exc)
            raise SignInRequired(f"refresh rejected: {exc}") from None
        id_token, claims = session.id_token, session.id_claims
        if response.id_token is not None:
            # OIDC Core §12.2: a refreshed ID token must be about the same user.
            new_claims = await self.id_tokens.validate(response.id_token, nonce=None, access_token=response.access_token)
            if new_claims.get("sub") != session.sub:
                raise SignInRequired("the refreshed ID token names another subject")
            id_token, claims = response.id_token, new_claims
        audit.info("access token refreshed sub=%s", session.sub)
        # The provider rotates refresh tokens; keep the old one only if it sent none.
        return replace(session, access_token=response.access_token, access_token_expires_at=response.expires_at,
                       refresh_token=response.refresh_token or session.refresh_token,
                       id_token=id_token, id_claims=claims)

    # -- logout --------------------------------------------------------------

    async def end_session_request(self, session: Session, state: str) -> tuple[str, dict[str, str]] | None:
        """Return the provider's end-session endpoint and the logout parameters, or None
        when the provider has no such endpoint.

        With `end_session_method` "post" the parameters include the ID token as
        `id_token_hint` and must be sent in a POST body, never in a URL. With "get"
        they name the client instead and fit in a redirect URL.
        """
        metadata = await self.metadata.get()
        if metadata.end_session_endpoint is None:
            return None
        parameters = {
            "client_id": self.oidc.client_id,
            "post_logout_redirect_uri": self.oidc.post_logout_redirect_uri,
            "state": state,
        }
        if self.oidc.end_session_method == "post":
            parameters["id_token_hint"] = session.id_token
        return metadata.end_session_endpoint, parameters

    async def userinfo(self, access_token: str) -> tuple[int, dict | None]:
        """Return the UserInfo status and claims; 404 when the provider has no such endpoint."""
        metadata = await self.metadata.get()
        if metadata.userinfo_endpoint is None:
            return 404, None
        return await self.tokens.userinfo(metadata.userinfo_endpoint, access_token)


def with_query(endpoint: str, query: Mapping[str, str]) -> str:
    separator = "&" if urllib.parse.urlsplit(endpoint).query else "?"
    return endpoint + separator + urllib.parse.urlencode(query)
