"""AccessTokenValidator: every check, each failing on a token crafted to fail it."""

from __future__ import annotations

import time

import pytest
import redis.exceptions

from servicekit import denylist
from servicekit.embedded import free_port
from servicekit.resource import InvalidToken
from tests.support.test_issuer import AUDIENCE, new_rsa_key


def tamper_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    return f"{header}.{flipped}.{signature}"


def now() -> int:
    return int(time.time())


# (case id, builds the token from the issuer, expected error_description)
REJECTED = [
    ("expired", lambda i: i.sign(i.claims(exp=now() - 3600, iat=now() - 7200, nbf=now() - 7200)),
     "the token has expired"),
    ("not_yet_valid", lambda i: i.sign(i.claims(nbf=now() + 3600)),
     "the token is not valid yet"),
    ("issued_in_future", lambda i: i.sign(i.claims(iat=now() + 3600)),
     "the token is not valid yet"),
    ("wrong_issuer", lambda i: i.sign(i.claims(iss="http://127.0.0.1:1")),
     "the token's issuer is not accepted"),
    ("wrong_audience", lambda i: i.sign(i.claims(aud="otherAPI")),
     "the token's audience does not include movieAPI"),
    ("alg_none", lambda i: i.sign_none(),
     "the token's algorithm is not accepted"),
    ("hs256_with_public_key", lambda i: i.sign_hs256_with_public_key(),
     "the token's algorithm is not accepted"),
    ("unknown_kid", lambda i: i.sign(header={"kid": "not-published"}),
     "the token's signing key is unknown"),
    ("ec_key_with_rs256", lambda i: i.sign(kid="ec-1", header={"alg": "RS256"}),
     "the token's algorithm does not match its key"),
    ("rsa_key_with_es256", lambda i: i.sign(kid="rsa-1", header={"alg": "ES256"}),
     "the token's algorithm does not match its key"),
    ("typ_jwt", lambda i: i.sign(header={"typ": "JWT"}),
     "the token is not an access token (typ must be at+jwt)"),
    ("typ_missing", lambda i: i.sign(header={"typ": None}),
     "the token is not an access token (typ must be at+jwt)"),
    ("kid_missing", lambda i: i.sign(header={"kid": None}),
     "the token's header has no key id (kid)"),
    ("signature_tampered", lambda i: tamper_payload(i.sign()),
     "the token's signature is invalid"),
    ("exp_null", lambda i: i.sign(i.claims(exp=None)),
     "the token has no exp claim"),
    ("exp_text", lambda i: i.sign(i.claims(exp="tomorrow")),
     "the token is not a well-formed JWT"),
    ("nbf_null", lambda i: i.sign(i.claims(nbf=None)),
     None),
    ("iss_number", lambda i: i.sign(i.claims(iss=5)),
     None),
    ("aud_numbers", lambda i: i.sign(i.claims(aud=[1, 2])),
     None),
    ("client_id_missing", lambda i: i.sign({k: v for k, v in i.claims().items() if k != "client_id"}),
     "the token has no client_id claim"),
    ("jti_missing", lambda i: i.sign({k: v for k, v in i.claims().items() if k != "jti"}),
     "the token has no jti claim"),
    ("sub_number", lambda i: i.sign(i.claims(sub=818727)),
     None),
    ("scope_object", lambda i: i.sign(i.claims(scope={"movieAPI": True})),
     "the token's scope claim must be a string of space-separated scopes"),
    ("scope_array", lambda i: i.sign(i.claims(scope=["movieAPI"])),
     "the token's scope claim must be a string of space-separated scopes"),
    ("scope_null", lambda i: i.sign(i.claims(scope=None)),
     "the token's scope claim must be a string of space-separated scopes"),
    ("exp_numeric_string", lambda i: i.sign(i.claims(exp=str(now() + 300))),
     "the token's exp claim must be a number (NumericDate)"),
    ("nbf_numeric_string", lambda i: i.sign(i.claims(nbf=str(now()))),
     "the token's nbf claim must be a number (NumericDate)"),
    ("iat_numeric_string", lambda i: i.sign(i.claims(iat=str(now()))),
     "the token's iat claim must be a number (NumericDate)"),
    ("nbf_boolean", lambda i: i.sign(i.claims(nbf=True)),
     "the token's nbf claim must be a number (NumericDate)"),
    ("iat_boolean", lambda i: i.sign(i.claims(iat=True)),
     "the token's iat claim must be a number (NumericDate)"),
    ("not_a_jwt", lambda i: "not-a-jwt",
     "the token is not a well-formed JWT"),
    ("header_not_json", lambda i: "eyJub3Q.e30.c2ln",
     "the token is not a well-formed JWT"),
]


@pytest.mark.parametrize("build,description", [case[1:] for case in REJECTED],
                         ids=[case[0] for case in REJECTED])
@pytest.mark.gen_test
async def test_token_rejected(issuer, make_validator, build, description):
    validator = make_validator()
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(build(issuer))
    assert caught.value.status == 401
    challenge = caught.value.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="test", error="invalid_token", error_description="')
    if description is not None:
        assert caught.value.description == description
        assert challenge == f'Bearer realm="test", error="invalid_token", error_description="{description}"'


@pytest.mark.gen_test
async def test_valid_rs256_machine_token(issuer, make_validator):
    claims = issuer.claims()
    token = await make_validator().validate(issuer.sign(claims))
    assert token.subject == "movieClient"
    assert token.client_id == "movieClient"
    assert token.is_machine
    assert token.scopes == frozenset({"movieAPI"})
    assert token.jti == claims["jti"]
    assert token.expires_at == claims["exp"]
    assert dict(token.claims) == claims


@pytest.mark.gen_test
async def test_valid_es256_user_token(issuer, make_validator):
    claims = issuer.user_claims("818727", roles=["admin"], scope="openid movieAPI")
    token = await make_validator().validate(issuer.sign(claims, kid="ec-1"))
    assert token.subject == "818727"
    assert not token.is_machine
    assert token.scopes == frozenset({"openid", "movieAPI"})
    assert token.claims["role"] == ["admin"]


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"])
@pytest.mark.gen_test
async def test_typ_accepted_in_any_case(issuer, make_validator, typ):
    token = await make_validator().validate(issuer.sign(header={"typ": typ}))
    assert token.client_id == "movieClient"


@pytest.mark.gen_test
async def test_audience_list_containing_api(issuer, make_validator):
    token = await make_validator().validate(issuer.sign(issuer.claims(aud=["other", AUDIENCE])))
    assert token.claims["aud"] == ["other", AUDIENCE]


@pytest.mark.gen_test
async def test_leeway_accepts_small_skew(issuer, make_validator):
    skewed = issuer.claims(exp=now() - 10, nbf=now() + 10)
    token = await make_validator(leeway=30).validate(issuer.sign(skewed))
    assert token.expires_at == skewed["exp"]
    with pytest.raises(InvalidToken):
        await make_validator(leeway=5).validate(issuer.sign(skewed))


@pytest.mark.gen_test
async def test_es256_rejected_when_not_allowed(issuer, make_validator):
    validator = make_validator(algorithms=frozenset({"RS256"}))
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(issuer.sign(kid="ec-1"))
    assert caught.value.description == "the token's algorithm is not accepted"


@pytest.mark.gen_test
async def test_revoked_jti_rejected_even_when_cached(issuer, make_validator, redis_url):
    validator = make_validator()
    claims = issuer.claims()
    token = issuer.sign(claims)
    assert (await validator.validate(token)).jti == claims["jti"]

    await denylist.revoke(validator._redis, claims["jti"], claims["exp"])
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(token)
    assert caught.value.description == "the token has been revoked"


@pytest.mark.gen_test
async def test_validated_token_served_from_cache(issuer, make_validator):
    validator = make_validator()
    token = issuer.sign(issuer.claims(lifetime=2))
    await validator.validate(token)
    # With the issuer gone, only the cache can accept the token again.
    issuer.stop()
    assert (await validator.validate(token)).client_id == "movieClient"
    assert validator.jwks.fetch_attempts == 1


@pytest.mark.gen_test
async def test_token_cache_bounded(issuer, make_validator):
    validator = make_validator(token_cache_size=3)
    for _ in range(5):
        await validator.validate(issuer.sign())
    assert len(validator._validated) == 3


@pytest.mark.gen_test
async def test_redis_down_is_not_acceptance(issuer, make_validator):
    # Nothing listens on this port, so the deny list cannot be read.
    validator = make_validator(redis_client_url=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(redis.exceptions.ConnectionError):
        await validator.validate(issuer.sign())


@pytest.mark.gen_test
async def test_key_removed_from_jwks_stops_verifying(issuer, make_validator):
    validator = make_validator(jwks_max_age=1.0, jwks_refetch_interval=0.1, token_cache_size=0)
    issuer.add_key(new_rsa_key("rsa-2"))
    await validator.validate(issuer.sign(kid="rsa-1"))

    del issuer.keys["rsa-1"]
    time.sleep(1.1)
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(issuer.sign(issuer.claims(), kid="rsa-2", header={"kid": "rsa-1"}))
    assert caught.value.description == "the token's signing key is unknown"
    assert (await validator.validate(issuer.sign(kid="rsa-2"))).client_id == "movieClient"
