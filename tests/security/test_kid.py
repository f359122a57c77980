"""`kid` and key-selection tricks (RFC 8725 §3.10, RFC 7515 §4.1.2-§4.1.5)."""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest
import requests

from tests.support.test_issuer import TestIssuer

from .conftest import machine_token

ATTACKER_SERVER = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def attacker_keys():
    # Never started: it only signs with keys the provider does not know.
    return TestIssuer(port=9)


def claims_of(stack) -> dict:
    claims = jwt.decode(machine_token(stack), options={"verify_signature": False})
    now = int(time.time())
    return {**claims, "jti": uuid.uuid4().hex, "iat": now, "nbf": now, "exp": now + 300}


def real_kid(stack) -> str:
    return jwt.get_unverified_header(machine_token(stack))["kid"]


def tricks(stack, attacker_keys) -> dict[str, str]:
    claims = claims_of(stack)
    key = attacker_keys.keys["rsa-1"]
    jwk = key.public_jwk()
    kid = real_kid(stack)
    return {
        # RFC 8725 §3.10: a kid the provider never published.
        "unknown-kid": attacker_keys.sign(claims, header={"kid": uuid.uuid4().hex}),
        # The provider's kid on a token signed with another key.
        "real-kid-other-key": attacker_keys.sign(claims, header={"kid": kid}),
        # RFC 8725 §3.10: kid values meant for file paths or queries.
        "kid-path": attacker_keys.sign(claims, header={"kid": "../../../../../../dev/null"}),
        "kid-sql": attacker_keys.sign(claims, header={"kid": "x' OR '1'='1"}),
        "kid-missing": attacker_keys.sign(claims, header={"kid": None}),
        "kid-number": attacker_keys.sign(claims, header={"kid": 1}),
        # RFC 7515 §4.1.2-§4.1.5: keys or key URLs in the header are not trusted.
        "jwk-header": attacker_keys.sign(claims, header={"kid": kid, "jwk": jwk}),
        "jku-header": attacker_keys.sign(claims, header={"kid": "rsa-1", "jku": f"{ATTACKER_SERVER}/jwks"}),
        "x5u-header": attacker_keys.sign(claims, header={"kid": "rsa-1", "x5u": f"{ATTACKER_SERVER}/cert.pem"}),
    }


@pytest.fixture(scope="module")
def tokens(stack, attacker_keys) -> dict[str, str]:
    return tricks(stack, attacker_keys)


NAMES = ["unknown-kid", "real-kid-other-key", "kid-path", "kid-sql", "kid-missing", "kid-number", "jwk-header",
         "jku-header", "x5u-header"]


@pytest.mark.parametrize("name", NAMES)
def test_movies_api_rejects_kid_trick(stack, tokens, name):
    # RFC 8725 §3.10: the kid only selects among the issuer's published keys.
    response = requests.get(f"{stack.movies.url}/api/movies", headers={"Authorization": f"Bearer {tokens[name]}"},
                            timeout=15)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("name", NAMES)
def test_gateway_rejects_kid_trick(stack, tokens, name):
    # RFC 8725 §3.10: likewise at the gateway.
    response = requests.get(f"{stack.gateway.url}/movies", headers={"Authorization": f"Bearer {tokens[name]}"},
                            timeout=15)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_random_kids_do_not_break_service(stack, attacker_keys):
    # RFC 8725 §3.10 and the JWKS refetch limit: a flood of random kids still gets 401s, and genuine tokens work.
    claims = claims_of(stack)
    for _ in range(30):
        token = attacker_keys.sign(claims, header={"kid": uuid.uuid4().hex})
        response = requests.get(f"{stack.movies.url}/api/movies", headers={"Authorization": f"Bearer {token}"},
                                timeout=15)
        assert response.status_code == 401
    genuine = {"Authorization": f"Bearer {machine_token(stack)}"}
    assert requests.get(f"{stack.movies.url}/api/movies", headers=genuine, timeout=15).status_code == 200


def test_header_is_json_object(stack):
    # RFC 7515 §5.2: a header that is not a JSON object is invalid.
    token = machine_token(stack)
    import base64

    bad_header = base64.urlsafe_b64encode(json.dumps(["kid"]).encode()).rstrip(b"=").decode()
    forged = f"{bad_header}.{token.split('.', 1)[1]}"
    response = requests.get(f"{stack.movies.url}/api/movies", headers={"Authorization": f"Bearer {forged}"},
                            timeout=15)
    assert response.status_code == 401
