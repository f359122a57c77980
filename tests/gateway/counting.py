"""A rate-limit case shared by the single-server and the Redis Cluster tests."""

from __future__ import annotations

from gateway_srv.ratelimit import RateLimiter
from gateway_srv.routes import RateLimit, RateLimitPolicy


def counting_stops_at_rejection(checks_factory, run, prefix: str) -> tuple[list, int]:
    """Count three requests of one user whose limit is 1; return the replies and the client counter."""
    policy = RateLimitPolicy(per_client=RateLimit(requests=10, window=60),
                             per_address=RateLimit(requests=10, window=60),
                             per_user=RateLimit(requests=1, window=60))
    counters = RateLimiter(prefix).counters("movies", policy, "webClient", "192.0.2.8", user="alice")

    async def action(client):
        checks = checks_factory(client)
        replies = [(await checks.check_and_count(None, counters))[1] for _ in range(3)]
        return replies, int(await client.get(counters[1].key))

    return run(action)
