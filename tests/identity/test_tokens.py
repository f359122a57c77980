"""client_credentials tokens: the RFC 9068 contract, verification by PyJWT and Authlib,
discovery, introspection and revocation, against a real identity_srv."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import warnings

import jwt
import redis

from servicekit import denylist
from servicekit.embedded import free_port, redis_server
from tests.identity.conftest import ODD_CLIENT_ID, ODD_CLIENT_SECRET
from tests.support.identity import basic_authorization, client_credentials_token, post_form
from tests.support.processes import get_status

import authlib.deprecate  # noqa: E402,F401  (installs Authlib's "always" warning filter first)

with warnings.catch_warnings():
    # Authlib 1.9 marks authlib.jose deprecated in favour of joserfc; it still works.
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.jose import JsonWebKey, JsonWebToken

TOKEN_CLAIMS = {"iss", "sub", "aud", "client_id", "scope", "jti", "iat", "nbf", "exp"}


def fetch_json(url: str) -> dict:
    status, body = get_status(url)
    assert status == 200
    return json.loads(body)


def verify_with_pyjwt(issuer: str, token: str, algorithm: str) -> dict:
    jwks_client = jwt.PyJWKClient(f"{issuer}/.well-known/openid-configuration/jwks", cache_keys=False)
    signing_key = jwks_client.get_signing_key_from_jwt(token)
    return jwt.decode(token, signing_key, algorithms=[algorithm], audience="movieAPI", issuer=issuer,
                      options={"require": sorted(TOKEN_CLAIMS)})


def verify_with_authlib(issuer: str, token: str, algorithm: str) -> dict:
    key_set = JsonWebKey.import_key_set(fetch_json(f"{issuer}/.well-known/openid-configuration/jwks"))
    claims = JsonWebToken([algorithm]).decode(
        token, key_set, claims_options={"iss": {"essential": True, "value": issuer},
                                        "aud": {"essential": True, "value": "movieAPI"}})
    claims.validate()
    return dict(claims)


def test_token_response_and_claims(shared_provider):
    status, headers, body = post_form(f"{shared_provider.url}/connect/token", {"grant_type": "client_credentials"},
                                      {"Authorization": basic_authorization("movieClient", "secret")})
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert headers["Pragma"] == "no-cache"
    answer = json.loads(body)
    assert set(answer) == {"access_token", "token_type", "expires_in", "scope"}
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == 3600
    assert answer["scope"] == "movieAPI"

    header = jwt.get_unverified_header(answer["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    claims = verify_with_pyjwt(shared_provider.url, answer["access_token"], "RS256")
    assert set(claims) == TOKEN_CLAIMS
    assert claims["iss"] == shared_provider.url
    assert claims["sub"] == "movieClient"
    assert claims["client_id"] == "movieClient"
    assert claims["aud"] == "movieAPI"
    assert claims["scope"] == "movieAPI"
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 5
    # 144 random bits in URL-safe base64 are 24 characters.
    assert len(claims["jti"]) == 24
    assert header["kid"] in {key["kid"] for key in fetch_json(f"{shared_provider.url}/.well-known/openid-configuration/jwks")["keys"]}


def test_token_verifies_with_authlib(shared_provider):
    token = client_credentials_token(shared_provider.url)
    claims = verify_with_authlib(shared_provider.url, token, "RS256")
    assert claims["sub"] == "movieClient"
    assert claims["scope"] == "movieAPI"


def test_jti_differs_per_token(shared_provider):
    first = jwt.decode(client_credentials_token(shared_provider.url), options={"verify_signature": False})
    second = jwt.decode(client_credentials_token(shared_provider.url), options={"verify_signature": False})
    assert first["jti"] != second["jti"]


def test_client_secret_post_and_explicit_scope(shared_provider):
    status, _, body = post_form(f"{shared_provider.url}/connect/token",
                                {"grant_type": "client_credentials", "scope": "movieAPI",
                                 "client_id": "movieClient", "client_secret": "secret"})
    assert status == 200
    assert json.loads(body)["scope"] == "movieAPI"


def test_basic_credentials_are_form_urlencoded(shared_provider):
    # The id travels as batch%3Ajobs and the secret's '+' as %2B; a client that
    # skipped the encoding would be rejected.
    token = client_credentials_token(shared_provider.url, ODD_CLIENT_ID, ODD_CLIENT_SECRET)
    claims = verify_with_pyjwt(shared_provider.url, token, "RS256")
    assert claims["sub"] == "batch:jobs"
    assert claims["client_id"] == "batch:jobs"


def test_basic_credentials_without_encoding_are_rejected(shared_provider):
    raw = base64.b64encode(f"{ODD_CLIENT_ID}:{ODD_CLIENT_SECRET}".encode("utf-8")).decode("ascii")
    status, _, body = post_form(f"{shared_provider.url}/connect/token", {"grant_type": "client_credentials"},
                                {"Authorization": f"Basic {raw}"})
    assert status == 401
    assert json.loads(body)["error"] == "invalid_client"


def test_client_secret_post_with_odd_characters(shared_provider):
    status, _, body = post_form(f"{shared_provider.url}/connect/token",
                                {"grant_type": "client_credentials", "client_id": ODD_CLIENT_ID,
                                 "client_secret": ODD_CLIENT_SECRET})
    assert status == 200


def test_discovery_document(shared_provider):
    issuer = shared_provider.url
    document = fetch_json(f"{issuer}/.well-known/openid-configuration")
    assert document["issuer"] == issuer
    assert document["jwks_uri"] == f"{issuer}/.well-known/openid-configuration/jwks"
    assert document["token_endpoint"] == f"{issuer}/connect/token"
    assert document["introspection_endpoint"] == f"{issuer}/connect/introspect"
    assert document["revocation_endpoint"] == f"{issuer}/connect/revocation"
    assert "client_credentials" in document["grant_types_supported"]
    assert "password" not in document["grant_types_supported"]
    assert "implicit" not in document["grant_types_supported"]
    # The browser endpoints are advertised exactly when the code grant is served.
    code_grant = "authorization_code" in document["grant_types_supported"]
    assert ("authorization_endpoint" in document) == code_grant
    assert ("userinfo_endpoint" in document) == code_grant
    assert {"client_secret_basic", "client_secret_post"} <= set(document["token_endpoint_auth_methods_supported"])
    assert document["introspection_endpoint_auth_methods_supported"] == ["client_secret_basic", "client_secret_post"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert document["subject_types_supported"] == ["public"]
    assert set(document["scopes_supported"]) == {"openid", "profile", "email", "address", "roles",
                                                  "offline_access", "movieAPI"}
    assert {"sub", "name", "email", "role", "address"} <= set(document["claims_supported"])


def test_introspection_of_active_token(shared_provider):
    token = client_credentials_token(shared_provider.url)
    claims = jwt.decode(token, options={"verify_signature": False})
    status, headers, body = post_form(f"{shared_provider.url}/connect/introspect", {"token": token},
                                      {"Authorization": basic_authorization("reportClient", "secret")})
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert json.loads(body) == {"active": True, "token_type": "Bearer", **claims}


def test_revoked_token_is_inactive(shared_provider, redis_proc):
    token = client_credentials_token(shared_provider.url)
    claims = jwt.decode(token, options={"verify_signature": False})
    auth = {"Authorization": basic_authorization("movieClient", "secret")}

    status, _, body = post_form(f"{shared_provider.url}/connect/revocation",
                                {"token": token, "token_type_hint": "access_token"}, auth)
    assert status == 200
    assert body == b""

    status, _, body = post_form(f"{shared_provider.url}/connect/introspect", {"token": token}, auth)
    assert status == 200
    assert json.loads(body) == {"active": False}

    # The deny-list entry lives until the token's exp plus the resource servers' margin.
    client = redis.Redis.from_url(redis_proc.url)
    try:
        ttl = client.ttl(denylist.KEY_PREFIX + hashlib.sha256(claims["jti"].encode()).hexdigest())
    finally:
        client.close()
    expected = claims["exp"] - time.time() + denylist.EXPIRY_MARGIN
    assert expected - 5 <= ttl <= expected + 1

    log = shared_provider.log()
    assert f"identity_srv.audit access token revoked: client=movieClient jti={claims['jti']}" in log
    assert token not in log
    # A second revocation of the same token is still 200.
    assert post_form(f"{shared_provider.url}/connect/revocation", {"token": token}, auth)[0] == 200


def test_issuance_is_audited_without_token(shared_provider):
    token = client_credentials_token(shared_provider.url)
    claims = jwt.decode(token, options={"verify_signature": False})
    log = shared_provider.log()
    assert (f"identity_srv.audit access token issued: client=movieClient grant=client_credentials "
            f"jti={claims['jti']}") in log
    assert token not in log
    assert token.split(".")[2] not in log


def test_es256_tokens_verify(provider_factory):
    service = provider_factory(IDENTITY__KEYS__ALGORITHM="ES256")
    token = client_credentials_token(service.url)
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    keys = fetch_json(f"{service.url}/.well-known/openid-configuration/jwks")["keys"]
    assert [(key["kty"], key["crv"], key["alg"], key["use"]) for key in keys] == [("EC", "P-256", "ES256", "sig")]
    assert "d" not in keys[0]
    assert verify_with_pyjwt(service.url, token, "ES256")["sub"] == "movieClient"
    assert verify_with_authlib(service.url, token, "ES256")["sub"] == "movieClient"


def test_jwks_has_only_public_members(shared_provider):
    keys = fetch_json(f"{shared_provider.url}/.well-known/openid-configuration/jwks")["keys"]
    assert len(keys) == 1
    assert set(keys[0]) == {"kty", "n", "e", "kid", "alg", "use"}


def test_issuer_from_settings_behind_proxy(provider_factory):
    service = provider_factory(ISSUER="http://id.example.test/")
    document = fetch_json(f"{service.url}/.well-known/openid-configuration")
    assert document["issuer"] == "http://id.example.test"
    assert document["token_endpoint"] == "http://id.example.test/connect/token"
    token = client_credentials_token(service.url)
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == "http://id.example.test"


def test_redis_down_gives_503(provider_factory, tmp_path, mongo_url):
    own_redis = redis_server(free_port(), tmp_path / "redis", persistent=False)
    own_redis.start()
    try:
        service = provider_factory(REDIS_URL=own_redis.url, MONGO_URL=mongo_url)
        token = client_credentials_token(service.url)
        own_redis.stop()
        status, headers, body = post_form(f"{service.url}/connect/introspect", {"token": token},
                                          {"Authorization": basic_authorization("movieClient", "secret")})
        assert status == 503
        assert json.loads(body) == {"error": "temporarily_unavailable",
                                    "error_description": "redis is unavailable; retry shortly"}
        assert headers["Retry-After"] == "5"
    finally:
        own_redis.stop()
