"""authenticate() in a Tornado app: every RFC 6750 §3 response, status, headers and body."""

from __future__ import annotations

import json
import urllib.parse

import pytest
import redis.asyncio
import tornado.httputil

from identity_srv.settings import load_settings
from servicekit.resource import (
    AccessTokenValidator, ClaimRequirement, Policy, ValidatorSettings, authenticate,
)
from servicekit.service import make_application, open_stores
from servicekit.web import BaseHandler
from tests.support.test_issuer import AUDIENCE, TestIssuer

POLICY = Policy(scopes=frozenset({AUDIENCE}),
                claims=(ClaimRequirement.of("client_id", ["movieClient", "movies_mvc_client"]),))


class ProtectedHandler(BaseHandler):
    def initialize(self, validator: AccessTokenValidator) -> None:
        self.validator = validator

    async def get(self) -> None:
        token = await authenticate(self, self.validator, POLICY)
        self.write_json({"sub": token.subject})

    post = get


@pytest.fixture(scope="module")
def module_issuer():
    issuer = TestIssuer().start()
    yield issuer
    issuer.stop()


@pytest.fixture
def app(module_issuer, store_env, io_loop):
    common = load_settings(store_env).common
    stores = open_stores(common)
    settings = ValidatorSettings(issuer=module_issuer.url, audience=AUDIENCE, realm="movies")
    validator = AccessTokenValidator(settings, redis.asyncio.Redis.from_url(store_env["REDIS_URL"]))
    yield make_application(common, stores, [(r"/protected", ProtectedHandler, {"validator": validator})])
    io_loop.run_sync(stores.close)


async def call(http_client, base_url, headers=None, query="", method="GET", body=None):
    response = await http_client.fetch(f"{base_url}/protected{query}", method=method, body=body,
                                       headers=headers or {}, raise_error=False)
    return response.code, response.headers.get("WWW-Authenticate"), json.loads(response.body)


@pytest.mark.gen_test
async def test_valid_token_accepted(http_client, base_url, module_issuer):
    status, challenge, body = await call(http_client, base_url,
                                         {"Authorization": f"Bearer {module_issuer.sign()}"})
    assert status == 200
    assert challenge is None
    assert body == {"sub": "movieClient"}


@pytest.mark.parametrize("scheme", ["bearer", "BEARER"])
@pytest.mark.gen_test
async def test_scheme_case_insensitive(http_client, base_url, module_issuer, scheme):
    status, _, _ = await call(http_client, base_url, {"Authorization": f"{scheme} {module_issuer.sign()}"})
    assert status == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic bW92aWVDbGllbnQ6c2VjcmV0"}],
                         ids=["no_header", "basic_scheme"])
@pytest.mark.gen_test
async def test_no_bearer_token_is_401_without_error(http_client, base_url, headers):
    status, challenge, body = await call(http_client, base_url, headers)
    assert status == 401
    assert challenge == 'Bearer realm="movies"'
    assert body == {"error": "unauthorized", "error_description": "a bearer access token is required"}


@pytest.mark.gen_test
async def test_expired_token_is_401_invalid_token(http_client, base_url, module_issuer):
    claims = module_issuer.claims(exp=1, iat=0, nbf=0)
    status, challenge, body = await call(http_client, base_url,
                                         {"Authorization": f"Bearer {module_issuer.sign(claims)}"})
    assert status == 401
    assert challenge == 'Bearer realm="movies", error="invalid_token", error_description="the token has expired"'
    assert body == {"error": "invalid_token", "error_description": "the token has expired"}


@pytest.mark.gen_test
async def test_missing_scope_is_403(http_client, base_url, module_issuer):
    token = module_issuer.sign(module_issuer.claims(scope="openid profile"))
    status, challenge, body = await call(http_client, base_url, {"Authorization": f"Bearer {token}"})
    assert status == 403
    assert challenge == ('Bearer realm="movies", error="insufficient_scope", '
                         'error_description="the token lacks the scope movieAPI", scope="movieAPI"')
    assert body == {"error": "insufficient_scope", "error_description": "the token lacks the scope movieAPI"}


@pytest.mark.gen_test
async def test_unknown_client_is_403(http_client, base_url, module_issuer):
    token = module_issuer.sign(module_issuer.claims(client_id="strangerClient"))
    status, challenge, body = await call(http_client, base_url, {"Authorization": f"Bearer {token}"})
    description = "the token's client_id claim does not hold one of the accepted values"
    assert status == 403
    assert challenge == (f'Bearer realm="movies", error="insufficient_scope", '
                         f'error_description="{description}", scope="movieAPI"')
    assert body == {"error": "insufficient_scope", "error_description": description}


MALFORMED = [
    ("bearer_without_token", {"Authorization": "Bearer"}, "",
     "the Authorization header must be `Bearer <token>`"),
    ("two_credentials", {"Authorization": "Bearer abc def"}, "",
     "the Authorization header must be `Bearer <token>`"),
    ("bad_characters", {"Authorization": 'Bearer ab"c'}, "",
     "the Authorization header must be `Bearer <token>`"),
    ("token_in_query", {}, "?access_token=abc",
     "send the access token in the Authorization header, not in the URL or the body"),
    ("header_and_query", {"Authorization": "Bearer abc"}, "?access_token=abc",
     "the request carries an access token in more than one place"),
]


@pytest.mark.parametrize("headers,query,description", [case[1:] for case in MALFORMED],
                         ids=[case[0] for case in MALFORMED])
@pytest.mark.gen_test
async def test_malformed_request_is_400(http_client, base_url, headers, query, description):
    status, challenge, body = await call(http_client, base_url, headers, query)
    assert status == 400
    assert challenge == f'Bearer realm="movies", error="invalid_request", error_description="{description}"'
    assert body == {"error": "invalid_request", "error_description": description}


@pytest.mark.gen_test
async def test_header_and_form_body_is_400(http_client, base_url, module_issuer):
    status, _, body = await call(
        http_client, base_url,
        {"Authorization": f"Bearer {module_issuer.sign()}", "Content-Type": "application/x-www-form-urlencoded"},
        method="POST", body=urllib.parse.urlencode({"access_token": module_issuer.sign()}))
    assert status == 400
    assert body["error_description"] == "the request carries an access token in more than one place"


@pytest.mark.gen_test
async def test_two_authorization_headers_is_400(http_client, base_url, module_issuer):
    headers = tornado.httputil.HTTPHeaders()
    headers.add("Authorization", f"Bearer {module_issuer.sign()}")
    headers.add("Authorization", f"Bearer {module_issuer.sign()}")
    status, _, body = await call(http_client, base_url, headers)
    assert status == 400
    assert body["error_description"] == "the request has more than one Authorization header"


@pytest.mark.gen_test
async def test_null_exp_is_401_not_500(http_client, base_url, module_issuer):
    token = module_issuer.sign(module_issuer.claims(exp=None))
    status, _, body = await call(http_client, base_url, {"Authorization": f"Bearer {token}"})
    assert status == 401
    assert body == {"error": "invalid_token", "error_description": "the token has no exp claim"}
