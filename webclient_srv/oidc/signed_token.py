"""The part that ID tokens and logout tokens share: a key from the provider's JWKS.

Both are JWTs that the provider signs for this client with a key it publishes.
A subclass names the error it raises and the token in its log lines.
"""

from __future__ import annotations

from typing import Any

from servicekit.errors import HttpProblem
from servicekit.resource import JwksCache
from servicekit.resource import ProviderUnavailable as KeysUnavailable

from ..errors import ProviderUnavailable
from .http import UNAVAILABLE_TEXT


class SignedTokenValidator:
    """Validate tokens issued to `client_id` by `issuer`, signed with a key of `jwks`."""

    # The error every failed check raises, its client-facing text, and the token's name in log lines.
    error: type[HttpProblem]
    description: str
    token_name: str

    def __init__(self, *, issuer: str, client_id: str, algorithms: frozenset[str], leeway: float,
                 jwks: JwksCache):
        self.issuer = issuer
        self.client_id = client_id
        self.algorithms = algorithms
        self.leeway = leeway
        self.jwks = jwks

    async def _key(self, kid: str, algorithm: str) -> Any:
        """Return the published key `kid`, which must be pinned to `algorithm`."""
        try:
            key = await self.jwks.key_for(kid)
        except KeysUnavailable as exc:
            raise ProviderUnavailable(UNAVAILABLE_TEXT, log_detail=exc.log_detail) from None
        if key is None:
            raise self.error(self.description, log_detail=f"the {self.token_name} names unknown kid {kid!r}")
        if key.algorithm != algorithm:
            raise self.error(self.description, log_detail=f"kid {kid!r} is {key.algorithm}, "
                                                          f"the {self.token_name} says {algorithm}")
        return key.key
