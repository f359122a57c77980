"""Authentication and claim policies at the gateway, with tokens signed by a test issuer."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.support.test_issuer import TestIssuer

from .conftest import open_route

POLICY_ROUTES = """
[routes.authentication]
scopes = ["movieAPI"]

[routes.claims_to_headers]
X-Client-Id = "client_id"
X-Roles = "role"
"""


@pytest.fixture
def issuer():
    running = TestIssuer().start()
    yield running
    running.stop()


def routes_with_claims(echo_url: str, values: str, match: str) -> str:
    text = open_route([echo_url], extra=POLICY_ROUTES)
    return text + f"""
[[routes.claims]]
claim = "role"
values = {values}
match = "{match}"
"""


async def fetch(url: str, token: str | None = None, **kwargs):
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return await AsyncHTTPClient().fetch(url, raise_error=False, headers=headers, **kwargs)


def echoed_headers(response) -> dict[str, list[str]]:
    assert response.code == 200, response.body
    found: dict[str, list[str]] = {}
    for name, value in json.loads(response.body)["headers"]:
        found.setdefault(name.lower(), []).append(value)
    return found


@pytest.mark.gen_test
async def test_missing_token_is_401(start_gateway, echo, issuer):
    gateway = await start_gateway(open_route([echo.url], extra=POLICY_ROUTES), ISSUER=issuer.url)
    response = await fetch(gateway.url + "/things/1")
    assert response.code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="gateway"'
    assert json.loads(response.body) == {"error": "unauthorized",
                                         "error_description": "a bearer access token is required"}
    assert echo.seen == []


@pytest.mark.gen_test
async def test_invalid_tokens_are_401(start_gateway, echo, issuer):
    gateway = await start_gateway(open_route([echo.url], extra=POLICY_ROUTES), ISSUER=issuer.url)
    cases = {
        "expired": (issuer.sign(issuer.claims(lifetime=-120)), "the token has expired"),
        "alg none": (issuer.sign_none(), "the token's algorithm is not accepted"),
        "other audience": (issuer.sign(issuer.claims(aud="otherAPI")),
                           "the token's audience does not include movieAPI"),
    }
    for name, (token, description) in cases.items():
        response = await fetch(gateway.url + "/things/1", token)
        assert response.code == 401, name
        assert response.headers["WWW-Authenticate"] == (
            f'Bearer realm="gateway", error="invalid_token", error_description="{description}"'), name
        assert json.loads(response.body) == {"error": "invalid_token", "error_description": description}, name
    assert echo.seen == []


@pytest.mark.gen_test
async def test_missing_scope_is_403(start_gateway, echo, issuer):
    gateway = await start_gateway(open_route([echo.url], extra=POLICY_ROUTES), ISSUER=issuer.url)
    response = await fetch(gateway.url + "/things/1", issuer.sign(issuer.claims(scope="openid")))
    assert response.code == 403
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="gateway", error="insufficient_scope", '
        'error_description="the token lacks the scope movieAPI", scope="movieAPI"')
    assert json.loads(response.body)["error"] == "insufficient_scope"
    assert echo.seen == []


@pytest.mark.gen_test
async def test_valid_token_passes_with_claim_headers(start_gateway, echo, issuer):
    gateway = await start_gateway(open_route([echo.url], extra=POLICY_ROUTES), ISSUER=issuer.url)
    token = issuer.sign(issuer.user_claims("user-7", roles=["user", "admin"]))
    response = await fetch(gateway.url + "/things/1", token,
                           headers={"X-Client-Id": "spoofed", "X-Roles": "superuser"})
    headers = echoed_headers(response)
    assert headers["x-client-id"] == ["movies_mvc_client"]
    assert headers["x-roles"] == ["user,admin"]
    assert headers["authorization"] == [f"Bearer {token}"]


@pytest.mark.gen_test
async def test_claim_header_dropped_without_claim(start_gateway, echo, issuer):
    gateway = await start_gateway(open_route([echo.url], extra=POLICY_ROUTES), ISSUER=issuer.url)
    response = await fetch(gateway.url + "/things/1", issuer.sign(), headers={"X-Roles": "admin"})
    headers = echoed_headers(response)
    assert "x-roles" not in headers
    assert headers["x-client-id"] == ["movieClient"]


@pytest.mark.gen_test
async def test_role_any_two_roles_pass(start_gateway, echo, issuer):
    gateway = await start_gateway(routes_with_claims(echo.url, '["admin"]', "any"), ISSUER=issuer.url)
    two_roles = issuer.sign(issuer.user_claims("bob-id", roles=["user", "admin"]))
    assert (await fetch(gateway.url + "/things/1", two_roles)).code == 200
    one_role = issuer.sign(issuer.user_claims("alice-id", roles=["user"]))
    rejected = await fetch(gateway.url + "/things/1", one_role)
    assert rejected.code == 403
    assert json.loads(rejected.body) == {
        "error": "insufficient_scope",
        "error_description": "the token's role claim does not hold one of the accepted values"}
    no_role = issuer.sign()
    assert (await fetch(gateway.url + "/things/1", no_role)).code == 403


@pytest.mark.gen_test
async def test_role_all_needs_every_value(start_gateway, echo, issuer):
    gateway = await start_gateway(routes_with_claims(echo.url, '["user", "admin"]', "all"), ISSUER=issuer.url)
    both = issuer.sign(issuer.user_claims("bob-id", roles=["admin", "user", "auditor"]))
    assert (await fetch(gateway.url + "/things/1", both)).code == 200
    only_admin = issuer.sign(issuer.user_claims("carol-id", roles=["admin"]))
    rejected = await fetch(gateway.url + "/things/1", only_admin)
    assert rejected.code == 403
    assert json.loads(rejected.body)["error_description"] == (
        "the token's role claim does not hold all of the accepted values")
    single_string = issuer.sign(issuer.user_claims("dave-id", role="admin"))
    assert (await fetch(gateway.url + "/things/1", single_string)).code == 403


@pytest.mark.gen_test
async def test_admin_status_needs_admin_scope(start_gateway, echo, issuer):
    gateway = await start_gateway(open_route([echo.url], extra=POLICY_ROUTES + """
[routes.circuit_breaker]
failures = 2
open_seconds = 5
"""), ISSUER=issuer.url)
    anonymous = await fetch(gateway.url + "/_gateway/status")
    assert anonymous.code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="gateway"'
    api_token = await fetch(gateway.url + "/_gateway/status", issuer.sign())
    assert api_token.code == 401
    assert api_token.headers["WWW-Authenticate"] == (
        'Bearer realm="gateway", error="invalid_token", '
        'error_description="the token\'s audience does not include gateway"')
    no_scope = await fetch(gateway.url + "/_gateway/status", issuer.sign(issuer.claims(aud="gateway")))
    assert no_scope.code == 403
    assert no_scope.headers["WWW-Authenticate"].startswith('Bearer realm="gateway", error="insufficient_scope"')
    admin_token = issuer.sign(issuer.claims(scope="gateway.admin", aud="gateway"))
    assert (await fetch(gateway.url + "/things/1", admin_token)).code == 401

    admin = await fetch(gateway.url + "/_gateway/status", admin_token)
    assert admin.code == 200
    status = json.loads(admin.body)
    assert [route["name"] for route in status["routes"]] == ["things"]
    assert status["routes"][0]["scopes"] == ["movieAPI"]
    assert status["circuits"] == {"things": {"state": "closed", "consecutive_failures": 0}}
    assert status["downstreams"]["svc"][0]["url"] == echo.url
    assert status["downstreams"]["svc"][0]["healthy"] is True
    post = await fetch(gateway.url + "/_gateway/status", method="POST", body=b"")
    assert post.code == 405
