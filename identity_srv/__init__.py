"""OpenID Connect provider and OAuth 2 authorization server."""
