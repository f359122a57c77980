"""The OpenID Connect relying party: discovery, PKCE, the token endpoint and ID tokens."""
