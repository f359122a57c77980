"""The admin endpoint with a real identity_srv token, from a client list that adds an admin client."""

from __future__ import annotations

import json

from tests.support.identity import client_credentials_token, start_identity
from tests.support.processes import ROOT, ServiceProcess, get_status

from .calls import call

# What an operator appends to conf/clients.toml to use the admin endpoint.
ADMIN_CLIENT = """
[[api_resources]]
name = "gateway"
scopes = ["gateway.admin"]
user_claims = []

[[clients]]
client_id = "gatewayAdmin"
name = "Gateway operator"
secret_hash = "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
grant_types = ["client_credentials"]
scopes = ["gateway.admin"]
access_token_lifetime = 300
"""


def test_admin_status_with_identity_token(store_env, tmp_path):
    clients_file = tmp_path / "clients.toml"
    clients_file.write_text((ROOT / "conf" / "clients.toml").read_text() + ADMIN_CLIENT)
    identity = start_identity(store_env, tmp_path / "identity.log", IDENTITY__CLIENTS__FILE=str(clients_file))
    gateway = ServiceProcess("gateway_srv", {**store_env, "ISSUER": identity.url,
                                             "GATEWAY__AUTH__CLIENTS_FILE": str(clients_file)},
                             tmp_path / "gateway.log").start()
    try:
        admin_token = client_credentials_token(identity.url, "gatewayAdmin", "secret", scope="gateway.admin")
        status = call(gateway.url, "GET", "/_gateway/status", admin_token)
        assert status.status == 200, status.body
        body = status.json()
        assert [route["name"] for route in body["routes"]] == ["movie", "movies"]
        assert body["circuits"] == {"movie": {"state": "closed", "consecutive_failures": 0},
                                    "movies": {"state": "closed", "consecutive_failures": 0}}
        assert body["downstreams"]["movies"][0]["url"] == "http://localhost:5001"

        api_token = client_credentials_token(identity.url)
        rejected = call(gateway.url, "GET", "/_gateway/status", api_token)
        assert rejected.status == 401
        # The admin token is not accepted on the API routes either.
        assert call(gateway.url, "GET", "/movies", admin_token).status == 401
        assert get_status(f"{gateway.url}/_gateway/status")[0] == 401
        assert json.loads(rejected.body)["error"] == "invalid_token"
    finally:
        gateway.stop()
        identity.stop()
