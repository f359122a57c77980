"""A MongoDB outage during sign-in: no code or refresh token is lost to a 503."""

from __future__ import annotations

import requests

from servicekit.embedded import free_port, secantus_server
from tests.signin.conftest import Browser, exchange, pkce_pair, query_of, refresh, seed_users
from tests.support.identity import start_identity
from tests.support.processes import get_status, wait_for


def test_code_and_refresh_survive_mongo_outage(redis_url, provider_env, tmp_path):
    mongo = secantus_server(free_port(), tmp_path / "mongo")
    mongo.start(timeout=60)
    env = {**provider_env, "MONGO_URL": mongo.url, "IDENTITY__MONGO__SERVER_SELECTION_TIMEOUT": "0.5"}
    seed_users(env)
    provider = start_identity(env, tmp_path / "identity.log")
    try:
        browser = Browser(provider.url)
        verifier, challenge = pkce_pair()
        code = query_of(browser.sign_in("alice", "alice", challenge=challenge))["code"]
        browser_two = Browser(provider.url)
        verifier_two, challenge_two = pkce_pair()
        second_code = query_of(browser_two.sign_in("bob", "bob", challenge=challenge_two))["code"]
        refresh_token = exchange(provider.url, second_code, verifier_two).json()["refresh_token"]

        mongo.stop()
        # Redeeming a code reads nothing from MongoDB, so it works during the outage.
        during = exchange(provider.url, code, verifier)
        assert during.status_code == 200, during.text
        # A refresh needs the user's current claims: 503, and the token is not spent.
        refused = refresh(provider.url, refresh_token)
        assert refused.status_code == 503
        assert refused.json() == {"error": "temporarily_unavailable",
                                  "error_description": "mongodb is unavailable; retry shortly"}

        mongo.start(timeout=60)
        wait_for(lambda: get_status(f"{provider.url}/readyz")[0] == 200, 30, message="provider ready")
        retried = refresh(provider.url, refresh_token)
        assert retried.status_code == 200, retried.text
        assert requests.get(f"{provider.url}/connect/userinfo", timeout=10, headers={
            "Authorization": f"Bearer {retried.json()['access_token']}"}).status_code == 200
    finally:
        provider.stop()
        mongo.stop()
