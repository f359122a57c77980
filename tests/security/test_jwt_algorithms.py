"""Algorithm confusion and other forged access tokens (RFC 8725 §2.1, §3.1, §3.11; RFC 9068 §4)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from .conftest import machine_token, signed_in_tokens


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(value: dict) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def parts(token: str) -> tuple[dict, dict, str]:
    header_text, claims_text, signature = token.split(".")
    return (json.loads(base64.urlsafe_b64decode(header_text + "==")),
            json.loads(base64.urlsafe_b64decode(claims_text + "==")), signature)


def public_pem(stack, kid: str) -> bytes:
    keys = requests.get(f"{stack.issuer}/.well-known/openid-configuration/jwks", timeout=15).json()["keys"]
    jwk = next(key for key in keys if key["kid"] == kid)
    return jwt.PyJWK(jwk).key.public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)


def forged_tokens(stack) -> dict[str, str]:
    token = machine_token(stack)
    header, claims, signature = parts(token)
    _, user_tokens = signed_in_tokens(stack)
    none_header = {**header, "alg": "none"}
    hs_header = {**header, "alg": "HS256"}
    hs_input = f"{segment(hs_header)}.{segment(claims)}"
    mac = hmac.new(public_pem(stack, header["kid"]), hs_input.encode("ascii"), hashlib.sha256).digest()
    other_alg = "ES256" if header["alg"].startswith("RS") else "RS256"
    return {
        # RFC 8725 §2.1: "none" must not be accepted.
        "alg-none": f"{segment(none_header)}.{segment(claims)}.",
        "alg-none-upper": f"{segment({**header, 'alg': 'None'})}.{segment(claims)}.",
        # RFC 8725 §2.1 and §3.1: HMAC keyed with the public key (key confusion).
        "hs256-public-key": f"{hs_input}.{b64url(mac)}",
        # RFC 8725 §3.1: the key's algorithm decides, not the header.
        "alg-switched": f"{segment({**header, 'alg': other_alg})}.{token.split('.', 1)[1]}",
        # RFC 7515 §5.2: a token without its signature is invalid.
        "signature-stripped": f"{token.rsplit('.', 1)[0]}.",
        "claims-changed": f"{token.split('.')[0]}.{segment({**claims, 'scope': 'movieAPI admin'})}.{signature}",
        # RFC 8725 §3.11 / RFC 9068 §4: an ID token (typ JWT, aud the client) is no access token.
        "id-token": user_tokens["id_token"],
        # RFC 8725 §3.11: typ changed, so the signature no longer matches either.
        "typ-jwt": f"{segment({**header, 'typ': 'JWT'})}.{token.split('.', 1)[1]}",
        # RFC 7515 §5.2: a two-part or garbage token.
        "two-parts": token.rsplit(".", 1)[0],
        # RFC 6750 §2.1 allows `~` in a b64token, but it is not base64url.
        "not-base64": "eyJ~~~~.eyJ~~~~.c2ln",
    }


@pytest.fixture(scope="module")
def forged(stack) -> dict[str, str]:
    return forged_tokens(stack)


NAMES = ["alg-none", "alg-none-upper", "hs256-public-key", "alg-switched", "signature-stripped", "claims-changed",
         "id-token", "typ-jwt", "two-parts", "not-base64"]


def assert_invalid_token(response: requests.Response) -> None:
    # RFC 6750 §3.1: 401 with error="invalid_token" in WWW-Authenticate.
    assert response.status_code == 401, response.text[:300]
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("name", NAMES)
def test_movies_api_rejects_forged(stack, forged, name):
    # RFC 8725 §2.1 / §3.1: the resource server accepts only the key's own algorithm and a valid signature.
    response = requests.get(f"{stack.movies.url}/api/movies", headers={"Authorization": f"Bearer {forged[name]}"},
                            timeout=15)
    assert_invalid_token(response)


@pytest.mark.parametrize("name", NAMES)
def test_gateway_rejects_forged(stack, forged, name):
    # RFC 8725 §2.1 / §3.1: the gateway validates before it forwards.
    response = requests.get(f"{stack.gateway.url}/movies", headers={"Authorization": f"Bearer {forged[name]}"},
                            timeout=15)
    assert_invalid_token(response)


@pytest.mark.parametrize("name", ["alg-none", "hs256-public-key", "alg-switched", "claims-changed"])
def test_userinfo_rejects_forged(stack, forged, name):
    # RFC 8725 §2.1: the provider's own UserInfo endpoint applies the same checks.
    response = requests.get(f"{stack.issuer}/connect/userinfo", headers={"Authorization": f"Bearer {forged[name]}"},
                            timeout=15)
    assert_invalid_token(response)


def test_genuine_token_accepted(stack):
    # The control case: the unaltered token reads movies through both.
    headers = {"Authorization": f"Bearer {machine_token(stack)}"}
    assert requests.get(f"{stack.movies.url}/api/movies", headers=headers, timeout=15).status_code == 200
    assert requests.get(f"{stack.gateway.url}/movies", headers=headers, timeout=15).status_code == 200


def test_malformed_bearer_value(stack):
    # RFC 6750 §3.1: a header that is not `Bearer <b64token>` is invalid_request, 400.
    response = requests.get(f"{stack.movies.url}/api/movies", headers={"Authorization": "Bearer eyJ!!!.eyJ???.sig"},
                            timeout=15)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
