"""The API gateway: routes, token checks, claim policies and rate limits."""
