"""PKCE S256: the RFC 7636 Appendix B example and malformed verifiers."""

from __future__ import annotations

import pytest

from identity_srv import pkce

# RFC 7636 Appendix B.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_rfc_example_challenge():
    assert pkce.challenge_of(RFC_VERIFIER) == RFC_CHALLENGE


def test_rfc_example_verifies():
    assert pkce.verify(RFC_VERIFIER, RFC_CHALLENGE) is True


@pytest.mark.parametrize(
    "verifier",
    [
        pytest.param(RFC_VERIFIER[:-1] + "l", id="one-character-changed"),
        pytest.param(RFC_VERIFIER[:42], id="too-short-42"),
        pytest.param("a" * 129, id="too-long-129"),
        pytest.param(RFC_VERIFIER[:-1] + "+", id="character-outside-unreserved"),
        pytest.param(RFC_CHALLENGE, id="challenge-sent-as-verifier-plain-downgrade"),
        pytest.param("", id="empty"),
    ],
)
def test_wrong_verifier_fails(verifier):
    assert pkce.verify(verifier, RFC_CHALLENGE) is False


@pytest.mark.parametrize(
    ("challenge", "valid"),
    [
        pytest.param(RFC_CHALLENGE, True, id="s256-shape"),
        pytest.param(RFC_CHALLENGE + "=", False, id="padded"),
        pytest.param(RFC_CHALLENGE[:42], False, id="short"),
        pytest.param(RFC_VERIFIER + "abc", False, id="plain-verifier-length"),
        pytest.param(RFC_CHALLENGE[:-1] + "/", False, id="base64-not-base64url"),
    ],
)
def test_challenge_shape(challenge, valid):
    assert pkce.is_valid_challenge(challenge) is valid
