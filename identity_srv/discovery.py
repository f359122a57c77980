"""The discovery document (OpenID Connect Discovery 1.0 §3, RFC 8414 §2).

Endpoint paths follow IdentityServer4's, which clients of the reference
architecture expect.
"""

from __future__ import annotations

from typing import Any

from .client_auth import METHODS, TOKEN_ENDPOINT_METHODS
from .grants import GRANTS
from .settings import Settings

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/openid-configuration/jwks"
TOKEN_PATH = "/connect/token"
INTROSPECTION_PATH = "/connect/introspect"
REVOCATION_PATH = "/connect/revocation"
AUTHORIZE_PATH = "/connect/authorize"
USERINFO_PATH = "/connect/userinfo"
END_SESSION_PATH = "/connect/endsession"

# Claims of the access tokens and ID tokens themselves, besides the user claims
# that identity scopes release.
_TOKEN_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "auth_time", "nonce",
                 "sid", "at_hash", "amr", "azp")


def discovery_document(settings: Settings) -> dict[str, Any]:
    """Build the document from settings; the URLs start with the configured issuer."""
    issuer = settings.common.issuer
    registry = settings.registry
    claims = list(_TOKEN_CLAIMS)
    for scope in registry.identity_scopes.values():
        claims.extend(claim for claim in scope.claims if claim not in claims)
    return {
        "issuer": issuer,
        "authorization_endpoint": issuer + AUTHORIZE_PATH,
        "token_endpoint": issuer + TOKEN_PATH,
        "userinfo_endpoint": issuer + USERINFO_PATH,
        "jwks_uri": issuer + JWKS_PATH,
        "end_session_endpoint": issuer + END_SESSION_PATH,
        "introspection_endpoint": issuer + INTROSPECTION_PATH,
        "revocation_endpoint": issuer + REVOCATION_PATH,
        "grant_types_supported": list(GRANTS),
        # Authorization code only: no implicit or hybrid flow.
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "subject_types_supported": ["public"],
        "scopes_supported": list(registry.all_scopes()),
        "claims_supported": claims,
        "token_endpoint_auth_methods_supported": list(TOKEN_ENDPOINT_METHODS),
        "introspection_endpoint_auth_methods_supported": list(METHODS),
        "revocation_endpoint_auth_methods_supported": list(METHODS),
        # PKCE with S256 only; plain is not accepted.
        "code_challenge_methods_supported": ["S256"],
        # RFC 9207: every authorization response carries `iss`.
        "authorization_response_iss_parameter_supported": True,
        "id_token_signing_alg_values_supported": [settings.keys.algorithm],
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "claims_parameter_supported": False,
    }
