"""Sign-in, its callback, sign-out and the post-logout callback."""

from __future__ import annotations

import hmac
import secrets

from .pages import SIGN_IN_COOKIE, SIGN_OUT_COOKIE, PageHandler
from .relying_party import safe_return_url, with_query

# Seconds the sign-out `state` cookie lives: long enough to sign out at the provider.
SIGN_OUT_STATE_LIFETIME = 600


class SignInHandler(PageHandler):
    """`GET /signin?return_url=/path`: start a sign-in at the provider."""

    async def get(self) -> None:
        return_url = safe_return_url(self.get_query_argument("return_url", "/"))
        if self.user_session is not None:
            self.redirect(return_url)
            return
        await self.send_to_sign_in(return_url)


class SignInCallbackHandler(PageHandler):
    """`GET /signin-oidc`: the provider's redirect back after the sign-in.

    A callback that fails (tampered `state`, a second use, an `error` from the
    provider, a rejected ID token) ends on an error page and signs nobody in.
    """

    async def get(self) -> None:
        arguments = {name: values[-1].decode("utf-8", "replace")
                     for name, values in self.request.query_arguments.items() if values}
        result = await self.rp.finish_sign_in(self.get_cookie(SIGN_IN_COOKIE), arguments)

        # A new cookie value on every sign-in, so a value fixed before it is worthless.
        await self.end_local_session()
        cookie_value = await self.sessions.create(result.session)
        self.set_private_cookie(self.settings["session_cookie"], cookie_value, max_age=self.sessions.lifetime)
        self.log_subject = result.session.sub
        self.redirect(result.return_url)


class SignOutHandler(PageHandler):
    """`POST /signout`: end the local session, then log out at the provider.

    With `oidc.end_session_method` "post", the end-session request carries the ID
    token as `id_token_hint` in a POST form, which OpenID Connect RP-Initiated
    Logout 1.0 §2 requires providers to accept. So the token never appears in a
    URL, a browser history or an access log. `/static/signout.js` submits the form, and
    without scripts the user presses its button. With "get" the browser is
    redirected with the client id and no token.
    """

    def get(self) -> None:
        if self.user_session is None:
            self.redirect("/")
            return
        self.render("signout.html")

    async def post(self) -> None:
        session = self.user_session
        await self.end_local_session()
        if session is None:
            self.redirect("/")
            return
        self.audit_log("sign-out sub=%s", session.sub)
        state = secrets.token_urlsafe(24)
        end_session = await self.rp.end_session_request(session, state)
        if end_session is None:
            self.redirect("/?signed_out=1")
            return
        self.set_private_cookie(SIGN_OUT_COOKIE, state, max_age=SIGN_OUT_STATE_LIFETIME)
        endpoint, parameters = end_session
        if "id_token_hint" in parameters:
            self.render("signout_provider.html", endpoint=endpoint, fields=parameters)
        else:
            self.redirect(with_query(endpoint, parameters))


class SignOutCallbackHandler(PageHandler):
    """`GET /signout-callback-oidc`: back from the provider's logout, on to the home page."""

    def get(self) -> None:
        expected = self.get_cookie(SIGN_OUT_COOKIE)
        received = self.get_query_argument("state", None)
        self.clear_cookie(SIGN_OUT_COOKIE, path="/")
        matched = bool(expected and received and hmac.compare_digest(expected.encode(), received.encode()))
        self.redirect("/?signed_out=1" if matched else "/")
