"""The discovery document (OpenID Connect Discovery 1.0 §3, RFC 8414 §2).

Endpoint paths follow IdentityServer4's, which clients of the reference
architecture expect. Only endpoints that exist are advertised: the authorization,
UserInfo and end-session endpoints (`/connect/authorize`, `/connect/userinfo`,
`/connect/endsession`) join the document when the browser sign-in is built.
"""

from __future__ import annotations

from typing import Any

from .client_auth import METHODS
from .grants import GRANTS
from .settings import Settings

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/openid-configuration/jwks"
TOKEN_PATH = "/connect/token"
INTROSPECTION_PATH = "/connect/introspect"
REVOCATION_PATH = "/connect/revocation"

# Claims of the access tokens and ID tokens themselves, besides the user claims
# that identity scopes release.
_TOKEN_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope")


def discovery_document(settings: Settings) -> dict[str, Any]:
    """Build the document from settings; the URLs start with the configured issuer."""
    issuer = settings.common.issuer
    registry = settings.registry
    claims = list(_TOKEN_CLAIMS)
    for scope in registry.identity_scopes.values():
        claims.extend(claim for claim in scope.claims if claim not in claims)
    return {
        "issuer": issuer,
        "jwks_uri": issuer + JWKS_PATH,
        "token_endpoint": issuer + TOKEN_PATH,
        "introspection_endpoint": issuer + INTROSPECTION_PATH,
        "revocation_endpoint": issuer + REVOCATION_PATH,
        "grant_types_supported": list(GRANTS),
        # TODO: add "code" with the authorization endpoint; until then no response type exists.
        "response_types_supported": [],
        "subject_types_supported": ["public"],
        "scopes_supported": list(registry.all_scopes()),
        "claims_supported": claims,
        "token_endpoint_auth_methods_supported": list(METHODS),
        "introspection_endpoint_auth_methods_supported": list(METHODS),
        "revocation_endpoint_auth_methods_supported": list(METHODS),
        # PKCE with S256 only; plain is not accepted (RFC 9700 §2.1.1).
        "code_challenge_methods_supported": ["S256"],
        # The algorithm of new signing keys. OpenID Connect Discovery requires the
        # field although ID tokens come with the browser sign-in.
        "id_token_signing_alg_values_supported": [settings.keys.algorithm],
    }
