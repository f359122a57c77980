"""Authorization policies on validated access tokens: required scopes and claim values.

A `Policy` is met when the token has every required scope and meets every
`ClaimRequirement`. A failure raises `InsufficientScope` (403): RFC 6750 §3.1 uses
it for a request that "requires higher privileges than provided by the access
token", which covers missing claim values as well as missing scopes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping

from .errors import InsufficientScope
from .validator import AccessToken


def claim_values(value: Any) -> frozenset[str]:
    """Return a claim's values as strings: a string is one value, an array its elements.

    Numbers and booleans become their JSON text (`7`, `true`); objects, null and
    array elements of those kinds give nothing, so they never meet a requirement.
    """
    items = value if isinstance(value, list) else [value]
    values = set()
    for item in items:
        if isinstance(item, bool):
            values.add("true" if item else "false")
        elif isinstance(item, (str, int, float)):
            values.add(str(item))
    return frozenset(values)


@dataclass(frozen=True)
class ClaimRequirement:
    """A claim and the values that satisfy it.

    With `mode="any"` the claim must hold one of `values` (an array claim matches
    when any element does); with `mode="all"` it must hold every one of them.
    A missing claim never matches.
    """

    claim: str
    values: frozenset[str]
    mode: Literal["any", "all"] = "any"

    def __post_init__(self) -> None:
        if self.mode not in ("any", "all"):
            raise ValueError(f"mode must be 'any' or 'all', not {self.mode!r}")
        if not self.values:
            raise ValueError(f"the requirement on {self.claim!r} lists no values")

    @classmethod
    def of(cls, claim: str, values: Iterable[str], mode: Literal["any", "all"] = "any") -> "ClaimRequirement":
        return cls(claim, frozenset(values), mode)

    def is_met(self, claims: Mapping[str, Any]) -> bool:
        if self.claim not in claims:
            return False
        present = claim_values(claims[self.claim])
        if self.mode == "all":
            return self.values <= present
        return not self.values.isdisjoint(present)


@dataclass(frozen=True)
class Policy:
    """Scopes and claim requirements that a token must all meet."""

    scopes: frozenset[str] = frozenset()
    claims: tuple[ClaimRequirement, ...] = field(default_factory=tuple)

    def check(self, token: AccessToken, realm: str) -> None:
        """Raise `InsufficientScope` unless `token` meets every part of this policy.

        The challenge's `scope` lists the required scopes (RFC 6750 §3). The
        description names the missing scopes or the unmet claim, never a value the
        token holds.
        """
        scope = " ".join(sorted(self.scopes))
        missing = sorted(self.scopes - token.scopes)
        if missing:
            raise InsufficientScope(f"the token lacks the scope {' '.join(missing)}", realm=realm,
                                    scope=scope, log_detail=f"missing scope {' '.join(missing)}")
        for requirement in self.claims:
            if not requirement.is_met(token.claims):
                quantifier = "all of" if requirement.mode == "all" else "one of"
                raise InsufficientScope(
                    f"the token's {requirement.claim} claim does not hold {quantifier} the accepted values",
                    realm=realm, scope=scope,
                    log_detail=f"claim {requirement.claim} does not hold {quantifier} "
                               f"{', '.join(sorted(requirement.values))}")
