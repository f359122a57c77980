"""Validation of ID tokens (OpenID Connect Core 1.0 §3.1.3.7) against the provider's JWKS.

`IdTokenValidator.validate` accepts an ID token only when all of these hold:

* its header names an accepted asymmetric `alg` and a `kid` the provider
  publishes, and that key is pinned to exactly that algorithm, so `none` and
  HS256 signed with a public key fail before any key is used;
* its `typ`, when present, is not `at+jwt`: an access token is no ID token;
* one `jwt.decode` call verifies the signature, `iss`, `aud` (this client),
  `exp` and `iat` with `leeway` seconds of clock skew, and the presence of
  `iss`, `sub`, `aud`, `exp` and `iat`;
* `azp`, required when `aud` has more than one value, names this client;
* `nonce` equals the one the sign-in sent, compared in constant time;
* `at_hash`, when the token has it, matches the access token of the same response
  (§3.1.3.8; the code flow makes it optional, and the provider sends it).

Every failure raises `InvalidIdToken`; a provider whose keys cannot be fetched
raises `ProviderUnavailable`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import jwt

from ..errors import InvalidIdToken
from .signed_token import SignedTokenValidator

REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat")

# The hash behind `at_hash` is the one of the token's signature algorithm (§3.1.3.6);
# Ed25519 signs with SHA-512.
_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}

DESCRIPTION = "the identity provider's response could not be verified, so you are not signed in"


def access_token_hash(access_token: str, algorithm: str) -> str:
    """Return the `at_hash` of `access_token`: base64url of the left half of its hash."""
    digest_name = "512" if algorithm == "EdDSA" else algorithm[-3:]
    digest = _HASHES[digest_name](access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:len(digest) // 2]).rstrip(b"=").decode("ascii")


class IdTokenValidator(SignedTokenValidator):
    """Validate ID tokens issued to `client_id` by `issuer`; see the module docstring."""

    error = InvalidIdToken
    description = DESCRIPTION
    token_name = "ID token"

    async def validate(self, id_token: str, *, nonce: str | None,
                       access_token: str | None) -> dict[str, Any]:
        """Return the claims of a valid ID token.

        `nonce` is the value the authorization request sent; None skips the check,
        which is right only for an ID token from a refresh (§12.2), where the
        caller compares `sub` with the session's instead.
        """
        header = self._read_header(id_token)
        algorithm = header["alg"]
        key = await self._key(header["kid"], algorithm)
        claims = self._decode(id_token, key, algorithm)
        self._check_azp(claims)
        if nonce is not None:
            self._check_nonce(claims, nonce)
        if access_token is not None and "at_hash" in claims:
            self._check_at_hash(claims["at_hash"], access_token, algorithm)
        return claims

    def _read_header(self, id_token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
        except Exception:  # noqa: BLE001 - any parse failure is a malformed token
            raise InvalidIdToken(DESCRIPTION, log_detail="the ID token is not a well-formed JWT") from None

        # Checked before any key lookup, so `none` and HS256 never reach a key.
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            raise InvalidIdToken(DESCRIPTION, log_detail=f"ID token alg {algorithm!r} rejected")

        token_type = header.get("typ")
        if isinstance(token_type, str) and token_type.lower() in ("at+jwt", "application/at+jwt"):
            raise InvalidIdToken(DESCRIPTION, log_detail="an access token was sent as the ID token")

        if not isinstance(header.get("kid"), str) or not header["kid"]:
            raise InvalidIdToken(DESCRIPTION, log_detail="the ID token's header has no kid")
        return header

    def _decode(self, id_token: str, key: Any, algorithm: str) -> dict[str, Any]:
        try:
            return jwt.decode(id_token, key, algorithms=[algorithm], audience=self.client_id,
                              issuer=self.issuer, leeway=self.leeway,
                              options={"require": list(REQUIRED_CLAIMS), "verify_signature": True,
                                       "verify_iat": True})
        except jwt.PyJWTError as exc:
            raise InvalidIdToken(DESCRIPTION, log_detail=f"ID token rejected: {type(exc).__name__}: {exc}") from None
        except Exception as exc:  # noqa: BLE001
            # PyJWT raises TypeError or ValueError for some malformed claims (a null `exp`, ...).
            raise InvalidIdToken(DESCRIPTION, log_detail=f"ID token claims malformed ({type(exc).__name__})") from None

    def _check_azp(self, claims: dict[str, Any]) -> None:
        # §3.1.3.7 items 4 and 5: with several audiences, azp must be present and be this client.
        audience = claims["aud"]
        several = isinstance(audience, list) and len(audience) > 1
        if (several or "azp" in claims) and claims.get("azp") != self.client_id:
            raise InvalidIdToken(DESCRIPTION, log_detail=f"ID token azp {claims.get('azp')!r} is not this client")

    def _check_nonce(self, claims: dict[str, Any], nonce: str) -> None:
        # §3.1.3.7 item 11: the nonce must equal the one sent, which defeats replayed ID tokens.
        received = claims.get("nonce")
        if not isinstance(received, str) or not hmac.compare_digest(received.encode(), nonce.encode()):
            raise InvalidIdToken(DESCRIPTION, log_detail="ID token nonce does not match the sign-in's")

    def _check_at_hash(self, at_hash: Any, access_token: str, algorithm: str) -> None:
        expected = access_token_hash(access_token, algorithm)
        if not isinstance(at_hash, str) or not hmac.compare_digest(at_hash.encode(), expected.encode()):
            raise InvalidIdToken(DESCRIPTION, log_detail="ID token at_hash does not match the access token")
