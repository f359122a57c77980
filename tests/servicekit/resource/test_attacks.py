"""Regressions for known attacks on JWT validation; each must end in 401 invalid_token."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from servicekit.resource import InvalidToken
from tests.support.test_issuer import TestIssuer, b64url


def segment(value) -> str:
    return b64url(json.dumps(value).encode())


@pytest.fixture
def attacker():
    attacker = TestIssuer().start()
    yield attacker
    attacker.stop()


@pytest.mark.gen_test
async def test_jku_header_never_fetched(issuer, attacker, make_validator):
    # The token points at the attacker's JWKS and is signed by the attacker's key.
    token = attacker.sign(issuer.claims(), kid="rsa-1",
                          header={"kid": "attacker-key", "jku": f"{attacker.url}/.well-known/openid-configuration/jwks"})
    with pytest.raises(InvalidToken) as caught:
        await make_validator().validate(token)
    assert caught.value.description == "the token's signing key is unknown"
    assert attacker.jwks_requests == 0
    assert attacker.discovery_requests == 0


@pytest.mark.gen_test
async def test_embedded_jwk_header_ignored(issuer, attacker, make_validator):
    # The attacker signs with its own key under the issuer's kid and puts its public
    # key in the header, as in CVE-2018-0114. Only the issuer's JWKS may count.
    forged = attacker.keys["rsa-1"]
    token = attacker.sign(issuer.claims(), kid="rsa-1", header={"jwk": forged.public_jwk()})
    with pytest.raises(InvalidToken) as caught:
        await make_validator().validate(token)
    assert caught.value.description == "the token's signature is invalid"


@pytest.mark.gen_test
async def test_kid_path_traversal_is_unknown_key(issuer, make_validator):
    token = issuer.sign(header={"kid": "../../../../dev/null"})
    with pytest.raises(InvalidToken) as caught:
        await make_validator().validate(token)
    assert caught.value.description == "the token's signing key is unknown"


@pytest.mark.gen_test
async def test_symmetric_jwks_key_never_used(issuer, make_validator):
    # A JWKS that (wrongly) publishes an HMAC secret must not make HS256 tokens valid.
    secret = b"published-by-mistake"
    original_jwks = issuer.jwks
    issuer.jwks = lambda: {"keys": original_jwks()["keys"] + [
        {"kty": "oct", "kid": "hmac", "k": b64url(secret), "alg": "HS256"}]}
    header = {"alg": "HS256", "typ": "at+jwt", "kid": "hmac"}
    signing_input = f"{segment(header)}.{segment(issuer.claims())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    validator = make_validator(algorithms=frozenset({"RS256", "ES256"}))
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(f"{signing_input}.{b64url(signature)}")
    assert caught.value.description == "the token's algorithm is not accepted"
    await validator.validate(issuer.sign())
    assert "hmac" not in validator.jwks._keys


@pytest.mark.gen_test
async def test_es256_zero_signature_rejected(issuer, make_validator):
    # "Psychic signatures" (CVE-2022-21449): r = s = 0 must never verify.
    header = {"alg": "ES256", "typ": "at+jwt", "kid": "ec-1"}
    token = f"{segment(header)}.{segment(issuer.claims())}.{b64url(bytes(64))}"
    with pytest.raises(InvalidToken) as caught:
        await make_validator().validate(token)
    assert caught.value.description == "the token's signature is invalid"


@pytest.mark.gen_test
async def test_unsigned_token_with_empty_signature(issuer, make_validator):
    header = {"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"}
    token = f"{segment(header)}.{segment(issuer.claims())}."
    with pytest.raises(InvalidToken) as caught:
        await make_validator().validate(token)
    assert caught.value.description == "the token's signature is invalid"


@pytest.mark.gen_test
async def test_payload_swapped_between_tokens(issuer, make_validator):
    admin_claims = issuer.user_claims("818727", roles=["admin"])
    genuine = issuer.sign(issuer.user_claims("818727", roles=["user"]))
    header, _, signature = genuine.split(".")
    swapped = f"{header}.{segment(admin_claims)}.{signature}"
    with pytest.raises(InvalidToken) as caught:
        await make_validator().validate(swapped)
    assert caught.value.description == "the token's signature is invalid"

