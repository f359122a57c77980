"""`GET /_gateway/status`: the loaded routes, circuit states and host health, read-only.

Protected by a bearer token with the admin scope (`auth.admin_scope`, by default
`gateway.admin`) and the admin audience (`auth.admin_audience`, by default
`gateway`). A separate audience keeps admin tokens from being accepted by the
APIs behind the gateway, and API tokens from reaching this endpoint.
"""

from __future__ import annotations

from servicekit.resource import AccessTokenValidator, Policy, authenticate
from servicekit.web import BaseHandler

from .proxy import Gateway
from .routes import Route


def describe_route(route: Route) -> dict:
    policy = route.auth
    return {
        "name": route.name,
        "upstream_path": route.upstream_path.text,
        "upstream_methods": sorted(route.methods) or "all",
        "downstream_path": route.downstream_path.text,
        "downstream": route.downstream,
        "scopes": sorted(policy.scopes) if policy else None,
        "claims": [{"claim": c.claim, "values": sorted(c.values), "match": c.mode}
                   for c in policy.claims] if policy else [],
        "claims_to_headers": dict(route.claims_to_headers),
        "rate_limit": {
            "window": route.rate_limit.window,
            "per_client": route.rate_limit.per_client.requests if route.rate_limit.per_client else None,
            "per_user": route.rate_limit.per_user.requests if route.rate_limit.per_user else None,
            "per_address": route.rate_limit.per_address.requests if route.rate_limit.per_address else None,
        } if route.rate_limit else None,
        "timeout": route.timeout,
        "retries": route.retries,
    }


class StatusHandler(BaseHandler):
    def initialize(self, gateway: Gateway, validator: AccessTokenValidator, admin_scope: str) -> None:
        self.gateway = gateway
        self.validator = validator
        self.policy = Policy(scopes=frozenset({admin_scope}))

    async def get(self) -> None:
        await authenticate(self, self.validator, self.policy)
        self.set_header("Cache-Control", "no-store")
        self.write_json({
            "routes": [describe_route(route) for route in self.gateway.routes.routes],
            "circuits": {name: circuit.snapshot() for name, circuit in self.gateway.circuits.items()},
            "downstreams": {name: [host.snapshot() for host in balancer.hosts]
                            for name, balancer in self.gateway.balancers.items()},
        })
