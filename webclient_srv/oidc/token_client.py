"""Requests to the provider's token and UserInfo endpoints (RFC 6749 §4.1.3, §6; OIDC Core §5.3).

The client authenticates with `client_secret_basic`: id and secret are each
form-urlencoded before they are joined and base64-encoded (RFC 6749 §2.3.1).
"""

from __future__ import annotations

import base64
import logging
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from ..errors import ProviderUnavailable, TokenRequestFailed
from .http import UNAVAILABLE_TEXT, fetch, json_object

log = logging.getLogger("webclient_srv.app")

FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    # Unix seconds; from `expires_in` at the time the response arrived.
    expires_at: float
    refresh_token: str | None
    id_token: str | None
    scope: str | None


class RefreshRejected(Exception):
    """The provider rejected the refresh token (`invalid_grant` and other 400 or 401 responses).

    The session cannot get new access tokens; the user must sign in again.
    """


def basic_authorization(client_id: str, secret: str) -> str:
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


class TokenClient:
    """Calls the token endpoint as one confidential client."""

    def __init__(self, client_id: str, client_secret: str, timeout: float):
        self.client_id = client_id
        self._authorization = basic_authorization(client_id, client_secret)
        self.timeout = timeout

    async def _post(self, endpoint: str, fields: dict[str, str]) -> tuple[int, dict[str, Any] | None]:
        response = await fetch(endpoint, method="POST", timeout=self.timeout,
                               body=urllib.parse.urlencode(fields).encode("ascii"),
                               headers={"Content-Type": FORM_TYPE, "Authorization": self._authorization})
        if response.code >= 500:
            raise ProviderUnavailable(UNAVAILABLE_TEXT, log_detail=f"token endpoint returned {response.code}")
        return response.code, json_object(response)

    async def exchange_code(self, endpoint: str, *, code: str, redirect_uri: str,
                            code_verifier: str) -> TokenResponse:
        """Redeem an authorization code; raise `TokenRequestFailed` when the provider refuses it."""
        status, body = await self._post(endpoint, {
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        })
        if status != 200 or body is None:
            raise TokenRequestFailed("the identity provider did not accept the sign-in; please sign in again",
                                     log_detail=f"code exchange failed: {_describe(status, body)}")
        return _read_token_response(body, require_id_token=True)

    async def refresh(self, endpoint: str, refresh_token: str) -> TokenResponse:
        """Use a refresh token (RFC 6749 §6); raise `RefreshRejected` when it no longer works.

        The provider rotates refresh tokens, so the caller must store the new one
        and never send this one again.
        """
        status, body = await self._post(endpoint, {"grant_type": "refresh_token", "refresh_token": refresh_token})
        if status in (400, 401):
            raise RefreshRejected(_describe(status, body))
        if status != 200 or body is None:
            raise TokenRequestFailed("the identity provider sent an unusable response; please sign in again",
                                     log_detail=f"refresh failed: {_describe(status, body)}")
        return _read_token_response(body, require_id_token=False)

    async def userinfo(self, endpoint: str, access_token: str) -> tuple[int, dict[str, Any] | None]:
        """Return the UserInfo status and claims (OIDC Core §5.3.2) for `access_token`."""
        response = await fetch(endpoint, timeout=self.timeout,
                               headers={"Authorization": f"Bearer {access_token}"})
        if response.code >= 500:
            raise ProviderUnavailable(UNAVAILABLE_TEXT, log_detail=f"UserInfo returned {response.code}")
        return response.code, json_object(response)


def _describe(status: int, body: dict[str, Any] | None) -> str:
    # Only the protocol's error code and description: the body of a success holds tokens.
    if body is None:
        return f"status {status} without a JSON body"
    return f"status {status} error={body.get('error')!r} description={body.get('error_description')!r}"


def _read_token_response(body: dict[str, Any], *, require_id_token: bool) -> TokenResponse:
    """Check the fields of a successful token response (RFC 6749 §5.1)."""
    problem = None
    token_type = body.get("token_type")
    if not isinstance(body.get("access_token"), str) or not body["access_token"]:
        problem = "no access_token"
    elif not isinstance(token_type, str) or token_type.lower() != "bearer":
        problem = f"token_type {token_type!r} is not Bearer"
    elif require_id_token and not isinstance(body.get("id_token"), str):
        problem = "no id_token"
    elif not isinstance(body.get("expires_in"), int) or isinstance(body.get("expires_in"), bool):
        problem = "no whole-number expires_in"
    if problem:
        raise TokenRequestFailed("the identity provider sent an unusable response; please sign in again",
                                 log_detail=f"token response rejected: {problem}")
    refresh_token = body.get("refresh_token")
    return TokenResponse(
        access_token=body["access_token"],
        expires_at=time.time() + body["expires_in"],
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        id_token=body.get("id_token") if isinstance(body.get("id_token"), str) else None,
        scope=body.get("scope") if isinstance(body.get("scope"), str) else None,
    )
