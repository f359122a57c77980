"""The resource-server toolkit: validate bearer access tokens and enforce policies.

The public API, shared by movies_srv and gateway_srv:

* `ValidatorSettings` (frozen; `read_validator_settings` reads it from `conf/`)
  configures one `AccessTokenValidator`, whose `validate(token)` returns an
  `AccessToken` or raises;
* `Policy` (required scopes) with `ClaimRequirement`s (a claim must hold one of,
  or all of, a set of values);
* `authenticate(handler, validator, policy)` does both for a Tornado request and
  raises the RFC 6750 errors below, which `servicekit.web.BaseHandler` writes.

Errors: `MissingToken` and `InvalidToken` (401), `InsufficientScope` (403),
`InvalidBearerRequest` (400), `ProviderUnavailable` (503).
"""

from .bearer import authenticate, bearer_token
from .errors import (
    BearerProblem, InsufficientScope, InvalidBearerRequest, InvalidToken, MissingToken,
    ProviderUnavailable,
)
from .jwks import JwksCache, PinnedKey
from .policy import ClaimRequirement, Policy, claim_values
from .validator import AccessToken, AccessTokenValidator, ValidatorSettings, read_validator_settings

__all__ = [
    "AccessToken", "AccessTokenValidator", "BearerProblem", "ClaimRequirement", "InsufficientScope",
    "InvalidBearerRequest", "InvalidToken", "JwksCache", "MissingToken", "PinnedKey", "Policy",
    "ProviderUnavailable", "ValidatorSettings", "authenticate", "bearer_token", "claim_values",
    "read_validator_settings",
]
