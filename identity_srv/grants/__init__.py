"""Grant types of the token endpoint, one module per grant.

Each module has the same two coroutines: `validate(provider, client, form)` checks
the request and raises an `OAuthError`, and `issue(provider, request)` writes what
the grant needs and returns the token response. Validation writes only where the
check itself must be atomic: redeeming a one-time code and rotating a refresh
token, so that two concurrent requests cannot both pass.
"""

from __future__ import annotations

from types import MappingProxyType

from . import authorization_code, client_credentials, refresh_token

# grant_type -> module. Only these are served and advertised in discovery.
GRANTS = MappingProxyType({
    authorization_code.GRANT_TYPE: authorization_code,
    client_credentials.GRANT_TYPE: client_credentials,
    refresh_token.GRANT_TYPE: refresh_token,
})
