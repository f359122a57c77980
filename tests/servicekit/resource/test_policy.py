"""Policy and ClaimRequirement: scopes, any/all claim values, array claims."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from servicekit.resource import AccessToken, ClaimRequirement, InsufficientScope, Policy, claim_values


def token(scope: str = "movieAPI", **claims) -> AccessToken:
    return AccessToken(claims=MappingProxyType({"sub": "818727", "client_id": "c", **claims}),
                       subject="818727", client_id="c", jti="j", expires_at=0.0,
                       scopes=frozenset(scope.split()))


REQUIREMENTS = [
    # (case id, requirement, claims, met)
    ("string_in_set", ClaimRequirement.of("role", ["admin", "editor"]), {"role": "admin"}, True),
    ("string_not_in_set", ClaimRequirement.of("role", ["admin"]), {"role": "user"}, False),
    ("array_any_element", ClaimRequirement.of("role", ["admin"]), {"role": ["user", "admin"]}, True),
    ("array_no_element", ClaimRequirement.of("role", ["admin"]), {"role": ["user"]}, False),
    ("missing_claim", ClaimRequirement.of("role", ["admin"]), {}, False),
    ("null_claim", ClaimRequirement.of("role", ["admin"]), {"role": None}, False),
    ("object_claim", ClaimRequirement.of("role", ["admin"]), {"role": {"admin": True}}, False),
    ("all_present", ClaimRequirement.of("role", ["admin", "user"], "all"), {"role": ["user", "admin", "x"]}, True),
    ("all_one_missing", ClaimRequirement.of("role", ["admin", "user"], "all"), {"role": ["admin"]}, False),
    ("boolean_as_text", ClaimRequirement.of("email_verified", ["true"]), {"email_verified": True}, True),
    ("number_as_text", ClaimRequirement.of("level", ["3"]), {"level": 3}, True),
]


@pytest.mark.parametrize("requirement,claims,met", [case[1:] for case in REQUIREMENTS],
                         ids=[case[0] for case in REQUIREMENTS])
def test_claim_requirement(requirement, claims, met):
    assert requirement.is_met(claims) is met


def test_requirement_rejects_bad_mode_and_empty_values():
    with pytest.raises(ValueError):
        ClaimRequirement.of("role", ["admin"], "some")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ClaimRequirement.of("role", [])


def test_claim_values_of_array():
    assert claim_values(["a", 1, False, None, {"x": 1}]) == frozenset({"a", "1", "false"})


def test_policy_met():
    Policy(scopes=frozenset({"movieAPI"}), claims=(ClaimRequirement.of("role", ["admin"]),)).check(
        token(role=["admin"]), "movies")


def test_policy_missing_scope():
    policy = Policy(scopes=frozenset({"movieAPI", "write"}))
    with pytest.raises(InsufficientScope) as caught:
        policy.check(token("movieAPI"), "movies")
    assert caught.value.status == 403
    assert caught.value.headers["WWW-Authenticate"] == (
        'Bearer realm="movies", error="insufficient_scope", '
        'error_description="the token lacks the scope write", scope="movieAPI write"')


def test_policy_claim_not_met():
    policy = Policy(claims=(ClaimRequirement.of("role", ["admin", "user"], "all"),))
    with pytest.raises(InsufficientScope) as caught:
        policy.check(token(role=["admin"]), "movies")
    assert caught.value.description == "the token's role claim does not hold all of the accepted values"
    assert caught.value.headers["WWW-Authenticate"] == (
        'Bearer realm="movies", error="insufficient_scope", '
        'error_description="the token\'s role claim does not hold all of the accepted values"')
