"""at_hash and the claims released by identity scopes and API resources."""

from __future__ import annotations

from pathlib import Path

from identity_srv.claims import access_token_claims, identity_claims
from identity_srv.clients import load_registry
from identity_srv.id_tokens import left_half_hash
from identity_srv.users import User

ROOT = Path(__file__).resolve().parents[2]

ALICE = User(sub="818727", username="alice", password_hash=None, claims={
    "name": "Alice Smith", "given_name": "Alice", "family_name": "Smith", "email": "AliceSmith@email.com",
    "email_verified": True, "website": "http://alice.com", "role": ["user"],
    "address": {"locality": "Heidelberg"},
})


def test_at_hash_of_known_value():
    # The access token and at_hash of the example in OpenID Connect Core 1.0 Appendix A.3,
    # which is RS256.
    assert left_half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256") == "77QmUPtjPfzWtF2AnpK9RQ"


def test_identity_claims_by_scope():
    registry = load_registry(ROOT / "conf" / "clients.toml")
    assert identity_claims(registry, ALICE, ("openid",)) == {"sub": "818727"}
    assert identity_claims(registry, ALICE, ("openid", "email", "roles")) == {
        "sub": "818727", "email": "AliceSmith@email.com", "email_verified": True, "role": ["user"]}
    assert identity_claims(registry, ALICE, ("openid", "profile", "movieAPI")) == {
        "sub": "818727", "name": "Alice Smith", "given_name": "Alice", "family_name": "Smith",
        "website": "http://alice.com"}


def test_access_token_claims_by_resource():
    registry = load_registry(ROOT / "conf" / "clients.toml")
    assert access_token_claims(registry, ALICE, ("movieAPI",)) == {"role": ["user"], "name": "Alice Smith"}
    assert access_token_claims(registry, ALICE, ()) == {}


def test_missing_claim_left_out():
    registry = load_registry(ROOT / "conf" / "clients.toml")
    bare = User(sub="u-1", username="x", password_hash=None, claims={})
    assert identity_claims(registry, bare, ("openid", "profile", "email")) == {"sub": "u-1"}
