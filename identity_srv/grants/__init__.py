"""Grant types of the token endpoint, one module per grant.

Each module has the same two phases: `validate(provider, client, form)` reads the
request and raises an `OAuthError`, touching no store, and `issue(provider,
request)` writes what the grant needs and returns the token response. The browser
sign-in grants (`authorization_code`, `refresh_token`) add their modules here.
"""

from __future__ import annotations

from types import MappingProxyType

from . import client_credentials

# grant_type -> module. Only these are served and advertised in discovery.
GRANTS = MappingProxyType({
    client_credentials.GRANT_TYPE: client_credentials,
})
