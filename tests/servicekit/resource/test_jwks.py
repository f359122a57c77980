"""JwksCache against a real test issuer: fetch limits, rotation, provider outages."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from servicekit.resource import InvalidToken, ProviderUnavailable
from servicekit.resource.jwks import parse_jwks
from tests.support.test_issuer import new_ec_key, new_rsa_key


@pytest.mark.gen_test
async def test_unknown_kid_flood_fetches_once_per_interval(issuer, make_validator):
    validator = make_validator(jwks_refetch_interval=0.5)
    await validator.validate(issuer.sign())
    assert issuer.discovery_requests == 1
    assert issuer.jwks_requests == 1

    for _ in range(50):
        with pytest.raises(InvalidToken):
            await validator.validate(issuer.sign(header={"kid": uuid.uuid4().hex}))
    assert issuer.jwks_requests == 1

    time.sleep(0.6)
    for _ in range(50):
        with pytest.raises(InvalidToken):
            await validator.validate(issuer.sign(header={"kid": uuid.uuid4().hex}))
    assert issuer.jwks_requests == 2
    assert issuer.discovery_requests == 1


@pytest.mark.gen_test
async def test_concurrent_first_requests_share_one_fetch(issuer, make_validator):
    validator = make_validator()
    tokens = [issuer.sign() for _ in range(20)]
    results = await asyncio.gather(*(validator.validate(token) for token in tokens))
    assert len(results) == 20
    assert issuer.jwks_requests == 1


@pytest.mark.gen_test
async def test_rotated_key_found_by_refetch(issuer, make_validator):
    validator = make_validator(jwks_refetch_interval=0.2)
    await validator.validate(issuer.sign())
    issuer.add_key(new_ec_key("ec-2"))
    time.sleep(0.3)
    token = await validator.validate(issuer.sign(kid="ec-2"))
    assert token.client_id == "movieClient"
    assert issuer.jwks_requests == 2


@pytest.mark.gen_test
async def test_rotated_key_waits_for_interval(issuer, make_validator):
    validator = make_validator(jwks_refetch_interval=60)
    await validator.validate(issuer.sign())
    issuer.add_key(new_rsa_key("rsa-2"))
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(issuer.sign(kid="rsa-2"))
    assert caught.value.description == "the token's signing key is unknown"
    assert issuer.jwks_requests == 1


@pytest.mark.gen_test
async def test_provider_down_without_keys_is_503(issuer, make_validator):
    issuer.stop()
    validator = make_validator()
    with pytest.raises(ProviderUnavailable) as caught:
        await validator.validate(issuer.sign())
    assert caught.value.status == 503
    assert caught.value.body() == {
        "error": "temporarily_unavailable",
        "error_description": "the identity provider's signing keys are unavailable; retry shortly",
    }
    assert caught.value.headers == {"Retry-After": "5"}


@pytest.mark.gen_test
async def test_provider_down_keeps_cached_keys(issuer, make_validator):
    validator = make_validator(jwks_max_age=1.0, jwks_refetch_interval=0.1, token_cache_size=0)
    await validator.validate(issuer.sign())
    issuer.stop()
    time.sleep(1.1)
    # The stale key still verifies, because the provider cannot be asked.
    assert (await validator.validate(issuer.sign())).client_id == "movieClient"
    # An unknown kid cannot be judged while the provider is down.
    time.sleep(0.2)
    with pytest.raises(ProviderUnavailable):
        await validator.validate(issuer.sign(header={"kid": "rsa-9"}))


@pytest.mark.gen_test
async def test_provider_back_after_outage(issuer, make_validator):
    issuer.stop()
    validator = make_validator(jwks_refetch_interval=0.2)
    with pytest.raises(ProviderUnavailable):
        await validator.validate(issuer.sign())
    issuer.start()
    time.sleep(0.3)
    assert (await validator.validate(issuer.sign())).client_id == "movieClient"


@pytest.mark.gen_test
async def test_discovery_naming_other_issuer_is_503(issuer, make_validator):
    issuer.discovery_issuer = "http://127.0.0.1:1"
    with pytest.raises(ProviderUnavailable) as caught:
        await make_validator().validate(issuer.sign())
    assert "names issuer 'http://127.0.0.1:1'" in caught.value.log_detail
    assert issuer.jwks_requests == 0


def test_parse_jwks_pins_and_skips():
    rsa_key, ec_key = new_rsa_key("r"), new_ec_key("e")
    rsa_without_alg = {k: v for k, v in rsa_key.public_jwk().items() if k != "alg"}
    document = {"keys": [
        rsa_without_alg,
        ec_key.public_jwk(),
        {**new_rsa_key("enc").public_jwk(), "use": "enc"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {k: v for k, v in new_rsa_key("nokid").public_jwk().items() if k != "kid"},
        {"kty": "RSA", "kid": "broken", "n": "AQAB"},
        "not an object",
    ]}
    keys = parse_jwks(document, frozenset({"RS256", "ES256"}))
    assert sorted(keys) == ["e", "r"]
    assert keys["r"].algorithm == "RS256"
    assert keys["e"].algorithm == "ES256"
    assert parse_jwks(document, frozenset({"RS256"})).keys() == {"r"}


def test_parse_jwks_without_keys_list():
    with pytest.raises(ValueError):
        parse_jwks({"keys": "none"}, frozenset({"RS256"}))
