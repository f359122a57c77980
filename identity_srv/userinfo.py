"""The UserInfo endpoint (OpenID Connect Core 1.0 §5.3): claims of the token's user.

The access token comes only in the Authorization header. It must be one this
provider issued, unrevoked, carrying the `openid` scope; the claims released are
those of the identity scopes it was granted. Errors are RFC 6750 §3 challenges.
"""

from __future__ import annotations

from servicekit import denylist
from servicekit.resource.bearer import bearer_token
from servicekit.resource.errors import InsufficientScope, InvalidToken
from servicekit.web import BaseHandler

from .claims import identity_claims
from .provider import Provider
from .tokens import verify_access_token


REALM = "identity_srv"


class UserInfoHandler(BaseHandler):
    def initialize(self, provider: Provider) -> None:
        self.provider = provider

    def check_xsrf_cookie(self) -> None:
        # A bearer token, not a cookie, authenticates this endpoint.
        return None

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    async def get(self) -> None:
        await self._answer()

    async def post(self) -> None:
        await self._answer()

    async def _answer(self) -> None:
        token = bearer_token(self.request, REALM)
        claims = verify_access_token(self.provider.keyring, self.provider.issuer, token)
        if claims is None or not isinstance(claims.get("jti"), str):
            raise InvalidToken("the access token is invalid or expired", realm=REALM)
        if await denylist.is_revoked(self.provider.redis, claims["jti"]):
            raise InvalidToken("the access token was revoked", realm=REALM)
        self.log_client_id = claims.get("client_id")
        scopes = tuple(str(claims.get("scope", "")).split())
        if "openid" not in scopes:
            raise InsufficientScope("the access token lacks the openid scope", realm=REALM, scope="openid")

        user = await self.provider.users.find_by_subject(claims["sub"])
        if user is None:
            raise InvalidToken("the user of this access token no longer exists", realm=REALM)
        self.log_subject = user.sub
        self.write_json(identity_claims(self.provider.registry, user, scopes))
