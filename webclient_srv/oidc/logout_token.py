"""Validation of logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.6).

`LogoutTokenValidator.validate` accepts a logout token only when all of these hold:

* its header names an accepted asymmetric `alg` and a `kid` the provider
  publishes, pinned to that algorithm, as for ID tokens;
* its `typ`, when present, is `logout+jwt`, so an ID token or an access token
  sent here fails before its claims are read (§4.1 of the specification);
* one `jwt.decode` call verifies the signature, `iss`, `aud` (this client),
  `iat`, and `exp` when present, with `leeway` seconds of clock skew;
* `iat` is at most `MAX_AGE` seconds old, so that a captured token cannot be
  replayed after its `jti` record has expired (`replay_window`);
* it has `jti`, and `sub` or `sid` (or both), each a non-empty string;
* `events` is an object whose member for the back-channel logout event is an object;
* it has no `nonce`: one would make it usable as an ID token in a forged sign-in.

Every failure raises `InvalidLogoutToken`; a provider whose keys cannot be
fetched raises `ProviderUnavailable`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import jwt

from ..errors import InvalidLogoutToken
from .signed_token import SignedTokenValidator

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPES = ("logout+jwt", "application/logout+jwt")

# Seconds after `iat` until a logout token is rejected as too old. The provider
# gives its tokens two minutes.
MAX_AGE = 300

DESCRIPTION = "the logout token is invalid"


class LogoutTokenValidator(SignedTokenValidator):
    """Validate logout tokens issued to `client_id` by `issuer`; see the module docstring."""

    error = InvalidLogoutToken
    description = DESCRIPTION
    token_name = "logout token"

    async def validate(self, logout_token: str, now: float | None = None) -> dict[str, Any]:
        """Return the claims of a valid logout token."""
        header = self._read_header(logout_token)
        key = await self._key(header["kid"], header["alg"])
        try:
            claims = jwt.decode(logout_token, key, algorithms=[header["alg"]], audience=self.client_id,
                                issuer=self.issuer, leeway=self.leeway,
                                options={"require": ["iss", "aud", "iat", "jti"], "verify_iat": True})
        except jwt.PyJWTError as exc:
            raise InvalidLogoutToken(DESCRIPTION, log_detail=f"logout token rejected: {type(exc).__name__}: "
                                                             f"{exc}") from None
        except (TypeError, ValueError) as exc:
            # PyJWT raises these for some malformed claims, such as a null `exp`.
            raise InvalidLogoutToken(DESCRIPTION, log_detail=f"logout token claims malformed "
                                                             f"({type(exc).__name__})") from None
        self._check_claims(claims, time.time() if now is None else now)
        return claims

    def replay_window(self, claims: dict[str, Any], now: float | None = None) -> int:
        """Return the seconds for which `validate` would still accept a token with these claims.

        That is until `iat` is `MAX_AGE` old, or until `exp` if it comes first,
        plus the leeway: the time a used `jti` must be remembered.
        """
        now = time.time() if now is None else now
        ends = claims["iat"] + MAX_AGE + self.leeway
        if isinstance(claims.get("exp"), (int, float)):
            ends = min(ends, claims["exp"] + self.leeway)
        return max(1, math.ceil(ends - now))

    def _read_header(self, logout_token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(logout_token)
        except jwt.PyJWTError:
            raise InvalidLogoutToken(DESCRIPTION, log_detail="the logout token is not a well-formed JWT") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            raise InvalidLogoutToken(DESCRIPTION, log_detail=f"logout token alg {algorithm!r} rejected")
        token_type = header.get("typ")
        if token_type is not None and (not isinstance(token_type, str)
                                       or token_type.lower() not in LOGOUT_TOKEN_TYPES):
            raise InvalidLogoutToken(DESCRIPTION, log_detail=f"logout token typ {token_type!r} rejected")
        if not isinstance(header.get("kid"), str) or not header["kid"]:
            raise InvalidLogoutToken(DESCRIPTION, log_detail="the logout token's header has no kid")
        return header

    def _check_claims(self, claims: dict[str, Any], now: float) -> None:
        problem = None
        if not isinstance(claims["iat"], (int, float)) or claims["iat"] < now - MAX_AGE - self.leeway:
            problem = f"iat is more than {MAX_AGE} seconds ago"
        elif not isinstance(claims["jti"], str) or not claims["jti"]:
            problem = "jti is not a string"
        elif "sub" not in claims and "sid" not in claims:
            problem = "it has neither sub nor sid"
        elif any(name in claims and not (isinstance(claims[name], str) and claims[name]) for name in ("sub", "sid")):
            problem = "sub or sid is not a non-empty string"
        elif not isinstance(claims.get("events"), dict) or not isinstance(claims["events"].get(LOGOUT_EVENT), dict):
            problem = "events has no back-channel logout event"
        elif "nonce" in claims:
            problem = "it has a nonce"
        if problem is not None:
            raise InvalidLogoutToken(DESCRIPTION, log_detail=f"logout token rejected: {problem}")
