"""IdTokenValidator: a valid ID token passes; each crafted failure is rejected for its reason."""

from __future__ import annotations

import asyncio
import time

import pytest

from servicekit.resource import JwksCache
from tests.support.test_issuer import BROWSER_CLIENT, TestIssuer
from webclient_srv.errors import InvalidIdToken, ProviderUnavailable
from webclient_srv.oidc.id_token import IdTokenValidator, access_token_hash

NONCE = "n-0S6_WzA2Mj"
ACCESS_TOKEN = "an-access-token-value"


@pytest.fixture
def issuer():
    running = TestIssuer().start()
    yield running
    running.stop()


def validator_for(issuer: TestIssuer) -> IdTokenValidator:
    jwks = JwksCache(issuer=issuer.url, discovery_url=f"{issuer.url}/.well-known/openid-configuration",
                     allowed_algorithms=frozenset({"RS256", "ES256"}), refetch_interval=0.1, max_age=60,
                     http_timeout=2)
    return IdTokenValidator(issuer=issuer.url, client_id=BROWSER_CLIENT, algorithms=frozenset({"RS256", "ES256"}),
                            leeway=5, jwks=jwks)


def id_claims(issuer: TestIssuer, algorithm: str = "RS256", **overrides):
    now = int(time.time())
    claims = {"iss": issuer.url, "sub": "88421113", "aud": BROWSER_CLIENT, "iat": now, "exp": now + 300,
              "auth_time": now, "nonce": NONCE, "sid": "sid-1", "at_hash": access_token_hash(ACCESS_TOKEN, algorithm)}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def id_token(issuer: TestIssuer, kid: str = "rsa-1", header=None, **overrides) -> str:
    algorithm = issuer.keys[kid].algorithm
    return issuer.sign(id_claims(issuer, algorithm, **overrides), kid=kid, header={"typ": "JWT", **(header or {})})


def validate(issuer: TestIssuer, token: str, nonce: str | None = NONCE, access_token: str | None = ACCESS_TOKEN):
    return asyncio.run(validator_for(issuer).validate(token, nonce=nonce, access_token=access_token))


def test_at_hash_of_the_spec_example():
    # OpenID Connect Core §A.3: the example access token and its at_hash (RS256).
    assert access_token_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256") == "77QmUPtjPfzWtF2AnpK9RQ"


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
def test_valid_id_token_passes(issuer, kid):
    claims = validate(issuer, id_token(issuer, kid=kid))
    assert claims["sub"] == "88421113"
    assert claims["sid"] == "sid-1"


def test_several_audiences_need_azp(issuer):
    token = id_token(issuer, aud=[BROWSER_CLIENT, "other"], azp=BROWSER_CLIENT)
    assert validate(issuer, token)["azp"] == BROWSER_CLIENT


def test_refreshed_id_token_without_nonce_passes_when_none_expected(issuer):
    assert validate(issuer, id_token(issuer, nonce=None), nonce=None)["sub"] == "88421113"


def now() -> int:
    return int(time.time())


# (case id, builds the token, keyword arguments of validate, expected log detail start)
REJECTED = [
    ("fails because the issuer is another", lambda i: id_token(i, iss="http://127.0.0.1:1"), {},
     "ID token rejected: InvalidIssuerError"),
    ("fails because the audience is another client", lambda i: id_token(i, aud="movieClient"), {},
     "ID token rejected: InvalidAudienceError"),
    ("fails because it expired", lambda i: id_token(i, exp=now() - 60, iat=now() - 400), {},
     "ID token rejected: ExpiredSignatureError"),
    ("fails because it is issued in the future", lambda i: id_token(i, iat=now() + 3600), {},
     "ID token rejected: ImmatureSignatureError"),
    ("fails because sub is missing", lambda i: id_token(i, sub=None), {},
     "ID token rejected: MissingRequiredClaimError"),
    ("fails because exp is null", lambda i: i.sign({**id_claims(i), "exp": None}, header={"typ": "JWT"}), {},
     "ID token rejected"),
    ("fails because the nonce differs", lambda i: id_token(i, nonce="other"), {},
     "ID token nonce does not match"),
    ("fails because the nonce is missing", lambda i: id_token(i, nonce=None), {},
     "ID token nonce does not match"),
    ("fails because at_hash is of another token", lambda i: id_token(i), {"access_token": "another-token"},
     "ID token at_hash does not match"),
    ("fails because azp is missing with two audiences", lambda i: id_token(i, aud=[BROWSER_CLIENT, "x"]), {},
     "ID token azp None is not this client"),
    ("fails because azp names another client", lambda i: id_token(i, azp="movieClient"), {},
     "ID token azp 'movieClient' is not this client"),
    ("fails because alg is none", lambda i: i.sign_none(id_claims(i)), {},
     "ID token alg 'none' rejected"),
    ("fails because HS256 uses the public key", lambda i: i.sign_hs256_with_public_key(id_claims(i)), {},
     "ID token alg 'HS256' rejected"),
    ("fails because it is an access token", lambda i: id_token(i, header={"typ": "at+jwt"}), {},
     "an access token was sent as the ID token"),
    ("fails because the kid is unknown", lambda i: id_token(i, header={"kid": "nope"}), {},
     "the ID token names unknown kid 'nope'"),
    ("fails because the alg does not match the key", lambda i: id_token(i, header={"alg": "ES256"}), {},
     "kid 'rsa-1' is RS256, the ID token says ES256"),
    ("fails because the signature is altered", lambda i: id_token(i)[:-4] + "AAAA", {},
     "ID token rejected: InvalidSignatureError"),
    ("fails because it is no JWT", lambda i: "not.a.jwt", {},
     "the ID token is not a well-formed JWT"),
]


@pytest.mark.parametrize("build, arguments, detail", [case[1:] for case in REJECTED],
                         ids=[case[0] for case in REJECTED])
def test_invalid_id_token_is_rejected(issuer, build, arguments, detail):
    with pytest.raises(InvalidIdToken) as raised:
        validate(issuer, build(issuer), **arguments)
    assert raised.value.status == 502
    assert raised.value.error == "invalid_id_token"
    assert raised.value.log_detail.startswith(detail), raised.value.log_detail


def test_provider_down_is_unavailable_not_invalid(issuer):
    token = id_token(issuer)
    issuer.stop()
    with pytest.raises(ProviderUnavailable) as raised:
        validate(issuer, token)
    assert raised.value.status == 503
