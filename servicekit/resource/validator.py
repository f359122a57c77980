"""Validation of RFC 9068 access tokens (JWTs) against the issuer's published keys.

`AccessTokenValidator.validate(token)` accepts a token only when all of these hold:

* its header names an allowed asymmetric `alg` and a `kid` the issuer publishes,
  and that key is pinned to exactly that algorithm, so `none`, HS256 signed with
  a public key, and an RSA key used as EC (or the reverse) all fail;
* its `typ` is `at+jwt` or `application/at+jwt`, case-insensitively (RFC 9068 §4),
  so an ID token cannot be replayed as an access token;
* one `jwt.decode` call verifies the signature, `iss`, `aud`, `exp`, `nbf` and
  `iat` (with `leeway` seconds of clock skew) and the presence of the claims
  RFC 9068 §2.2 requires: `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`, `jti`;
* `exp`, `nbf` and `iat` are JSON numbers (RFC 7519 §2 NumericDate), although
  PyJWT also takes a numeric string, and `scope` is a string (RFC 9068 §2.2.3);
* its `jti` is not on the deny list in Redis (`servicekit.denylist`).

Every failure raises `InvalidToken` (401). Redis being down propagates its
connection error (503 at the boundary), and keys that cannot be fetched raise
`ProviderUnavailable` (503): neither ever lets a token through unchecked.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

import jwt
import redis.asyncio

from .. import denylist
from ..settings import Reader, SettingsError
from .errors import InvalidToken
from .jwks import ASYMMETRIC_ALGORITHMS, JwksCache

log = logging.getLogger("servicekit.resource.validator")

ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")

# RFC 9068 §2.2: the claims every JWT access token carries.
REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
# RFC 7519 §2: the claims whose value is a NumericDate, a JSON number.
NUMERIC_DATE_CLAIMS = ("exp", "nbf", "iat")


@dataclass(frozen=True)
class ValidatorSettings:
    """Settings of access token validation for one resource server.

    `issuer` must equal each token's `iss` and the discovery document's `issuer`.
    `audience` must be one of each token's `aud` values. Times are in seconds.
    """

    issuer: str
    audience: str
    # The realm sent in `WWW-Authenticate` challenges.
    realm: str
    algorithms: frozenset[str] = frozenset({"RS256", "ES256"})
    # Clock skew allowed on `exp`, `nbf` and `iat`.
    leeway: float = 30.0
    # Minimum seconds between two JWKS fetches caused by tokens naming an unknown `kid`.
    jwks_refetch_interval: float = 30.0
    # Age after which the cached JWKS is fetched again on the next request.
    jwks_max_age: float = 600.0
    # Timeout of each request to the provider (discovery and JWKS).
    http_timeout: float = 5.0
    # How many validated tokens are remembered until their `exp`; 0 turns the cache off.
    token_cache_size: int = 10_000

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"


def read_validator_settings(reader: Reader, *, issuer: str, audience: str, realm: str,
                            section: str = "tokens") -> ValidatorSettings:
    """Read `ValidatorSettings` from `[<section>]` of a service's settings.

    Keys: `algorithms`, `leeway`, `jwks_refetch_interval`, `jwks_max_age`,
    `http_timeout`, `token_cache_size`; each has the dataclass default.
    """
    defaults = ValidatorSettings(issuer=issuer, audience=audience, realm=realm)
    algorithms = frozenset(reader.string_list(f"{section}.algorithms", sorted(defaults.algorithms)))
    unsupported = sorted(algorithms - ASYMMETRIC_ALGORITHMS)
    if unsupported:
        raise SettingsError(f"setting '{section}.algorithms' contains {', '.join(unsupported)}: use only "
                            f"asymmetric algorithms ({', '.join(sorted(ASYMMETRIC_ALGORITHMS))}) "
                            f"in {reader.source}")
    return ValidatorSettings(
        issuer=issuer,
        audience=audience,
        realm=realm,
        algorithms=algorithms,
        leeway=reader.number(f"{section}.leeway", defaults.leeway),
        jwks_refetch_interval=reader.number(f"{section}.jwks_refetch_interval",
                                            defaults.jwks_refetch_interval, minimum=0.1),
        jwks_max_age=reader.number(f"{section}.jwks_max_age", defaults.jwks_max_age, minimum=1.0),
        http_timeout=reader.number(f"{section}.http_timeout", defaults.http_timeout, minimum=0.1),
        token_cache_size=reader.integer(f"{section}.token_cache_size", defaults.token_cache_size,
                                        minimum=0, maximum=10_000_000),
    )


@dataclass(frozen=True)
class AccessToken:
    """A validated access token: its claims and the facts derived from them."""

    claims: Mapping[str, Any]
    subject: str
    client_id: str
    jti: str
    # Unix seconds.
    expires_at: float
    scopes: frozenset[str]

    @property
    def is_machine(self) -> bool:
        """True for a client_credentials token, whose `sub` is its `client_id` (RFC 9068 §2.2)."""
        return self.subject == self.client_id


class AccessTokenValidator:
    """Validate bearer access tokens for one audience; see the module docstring.

    One instance per process keeps the JWKS cache and a bounded cache of
    validated tokens, keyed by the SHA-256 of the token and kept until the token's
    `exp`. `validate` checks the deny list on every call, cached or not.
    """

    def __init__(self, settings: ValidatorSettings, redis_client: redis.asyncio.Redis,
                 jwks: JwksCache | None = None):
        self.settings = settings
        self._redis = redis_client
        self.jwks = jwks or JwksCache(
            issuer=settings.issuer, discovery_url=settings.discovery_url,
            allowed_algorithms=settings.algorithms, refetch_interval=settings.jwks_refetch_interval,
            max_age=settings.jwks_max_age, http_timeout=settings.http_timeout)
        self._validated: OrderedDict[bytes, AccessToken] = OrderedDict()

    async def validate(self, token: str) -> AccessToken:
        """Return the token's claims if it is acceptable; raise `InvalidToken` otherwise.

        Raises `ProviderUnavailable` when its key is not cached and the provider
        does not respond, and Redis' connection errors when the deny list cannot
        be read.
        """
        access_token = await self.verify_signature_and_claims(token)
        # Revocation can happen at any time, so this is never cached.
        if await denylist.is_revoked(self._redis, access_token.jti):
            raise self.revoked(access_token)
        return access_token

    async def verify_signature_and_claims(self, token: str) -> AccessToken:
        """Run every check of `validate` except the deny list, which the caller must check.

        For a caller that reads the deny list in the same Redis round trip as
        other keys (the gateway's rate limits) and raises `revoked(token)` on a hit.
        """
        digest = hashlib.sha256(token.encode("ascii", "replace")).digest()
        access_token = self._cached(digest)
        if access_token is None:
            access_token = await self._verify(token)
            self._remember(digest, access_token)
        return access_token

    def revoked(self, access_token: AccessToken) -> InvalidToken:
        """Return the 401 for a token found on the deny list."""
        return self._invalid("the token has been revoked",
                             f"revoked token presented: jti hash {_short_hash(access_token.jti)}")

    def _invalid(self, description: str, log_detail: str | None = None) -> InvalidToken:
        return InvalidToken(description, realm=self.settings.realm, log_detail=log_detail or description)

    def _cached(self, digest: bytes) -> AccessToken | None:
        access_token = self._validated.get(digest)
        if access_token is None:
            return None
        if time.time() >= access_token.expires_at:
            del self._validated[digest]
            return None
        self._validated.move_to_end(digest)
        return access_token

    def _remember(self, digest: bytes, access_token: AccessToken) -> None:
        if self.settings.token_cache_size == 0:
            return
        self._validated[digest] = access_token
        while len(self._validated) > self.settings.token_cache_size:
            self._validated.popitem(last=False)

    async def _verify(self, token: str) -> AccessToken:
        header = self._read_header(token)
        algorithm, kid = header["alg"], header["kid"]

        # Only a key the issuer publishes, and only with the algorithm it is pinned to.
        key = await self.jwks.key_for(kid)
        if key is None:
            raise self._invalid("the token's signing key is unknown", f"unknown kid {kid!r}")
        if key.algorithm != algorithm:
            raise self._invalid("the token's algorithm does not match its key",
                                f"kid {kid!r} is {key.algorithm}, token says {algorithm}")

        claims = self._decode(token, key.key, algorithm)
        return self._access_token(claims)

    def _read_header(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except Exception:  # noqa: BLE001 - see _decode: any parse failure is a bad token
            raise self._invalid("the token is not a well-formed JWT") from None

        # Checked before any key lookup, so `none` and HS256 never reach a key.
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.settings.algorithms:
            raise self._invalid("the token's algorithm is not accepted", f"alg {algorithm!r} rejected")

        # RFC 9068 §4: resource servers reject tokens whose typ is not at+jwt.
        token_type = header.get("typ")
        if not isinstance(token_type, str) or token_type.lower() not in ACCESS_TOKEN_TYPES:
            raise self._invalid("the token is not an access token (typ must be at+jwt)",
                                f"typ {token_type!r} rejected")

        if not isinstance(header.get("kid"), str) or not header["kid"]:
            raise self._invalid("the token's header has no key id (kid)")
        return header

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        settings = self.settings
        try:
            return jwt.decode(
                token, key, algorithms=[algorithm], audience=settings.audience,
                issuer=settings.issuer, leeway=settings.leeway,
                options={"require": list(REQUIRED_CLAIMS), "verify_signature": True})
        except jwt.PyJWTError as exc:
            description = _describe(exc, settings.audience)
            raise self._invalid(description, f"{description} ({type(exc).__name__})") from None
        except Exception as exc:  # noqa: BLE001
            # PyJWT raises TypeError or ValueError for some malformed claims (a null
            # or non-numeric `exp`, ...). Whatever the cause, it is the token's fault.
            raise self._invalid("the token's claims are malformed",
                                f"malformed claims ({type(exc).__name__})") from None

    def _access_token(self, claims: dict[str, Any]) -> AccessToken:
        for name in ("sub", "client_id", "jti"):
            if not isinstance(claims[name], str) or not claims[name]:
                raise self._invalid(f"the token's {name} claim must be a non-empty string")

        # PyJWT checks int(value), so it accepts "1700000000" and true as times.
        for name in NUMERIC_DATE_CLAIMS:
            if name in claims and not _is_json_number(claims[name]):
                raise self._invalid(f"the token's {name} claim must be a number (NumericDate)")

        return AccessToken(
            claims=MappingProxyType(claims),
            subject=claims["sub"],
            client_id=claims["client_id"],
            jti=claims["jti"],
            expires_at=float(claims["exp"]),
            scopes=self._scopes(claims),
        )

    def _scopes(self, claims: Mapping[str, Any]) -> frozenset[str]:
        # RFC 9068 §2.2.3: `scope` is a string of space-separated scopes. A JSON array,
        # null or any other type is rejected; an absent claim grants no scope.
        if "scope" not in claims:
            return frozenset()
        if isinstance(claims["scope"], str):
            return frozenset(claims["scope"].split())
        raise self._invalid("the token's scope claim must be a string of space-separated scopes")


def _describe(exc: jwt.PyJWTError, audience: str) -> str:
    """Return a client-facing reason for a PyJWT error; it names no key or secret."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "the token has expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "the token is not valid yet"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "the token's issuer is not accepted"
    if isinstance(exc, jwt.InvalidAudienceError):
        return f"the token's audience does not include {audience}"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token has no {exc.claim} claim"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "the token's signature is invalid"
    if isinstance(exc, jwt.DecodeError):
        return "the token is not a well-formed JWT"
    return "the token is invalid"


def _is_json_number(value: Any) -> bool:
    # bool is a subclass of int in Python, but JSON true is no number.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]
