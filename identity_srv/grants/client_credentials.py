"""The client credentials grant (RFC 6749 §4.4): a client gets a token for itself."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..clients import Client
from ..provider import Provider
from ..scopes import api_scopes_for, parse_scope
from ..tokens import issue_access_token

GRANT_TYPE = "client_credentials"

audit_log = logging.getLogger("identity_srv.audit")


@dataclass(frozen=True)
class ClientCredentialsRequest:
    client: Client
    scopes: tuple[str, ...]


async def validate(provider: Provider, client: Client, form: dict[str, str]) -> ClientCredentialsRequest:
    """Check the requested scopes against the client's; omitted scope means all its API scopes.

    Other parameters are ignored: RFC 6749 §3.2 says unrecognized ones MUST be.
    """
    scopes = api_scopes_for(provider.registry, client, parse_scope(form.get("scope")))
    return ClientCredentialsRequest(client=client, scopes=scopes)


async def issue(provider: Provider, request: ClientCredentialsRequest) -> dict[str, Any]:
    """Sign the access token and return the token response (RFC 6749 §5.1)."""
    client = request.client
    # RFC 9068 §2.2: with no resource owner, `sub` is the client's own id.
    issued = issue_access_token(
        provider.keyring, provider.issuer, subject=client.client_id, client_id=client.client_id,
        audience=provider.registry.audience(request.scopes), scopes=request.scopes,
        lifetime=client.access_token_lifetime)
    audit_log.info("access token issued: client=%s grant=%s jti=%s kid=%s scope=%s exp=%d",
                   client.client_id, GRANT_TYPE, issued.claims["jti"], issued.kid, issued.claims["scope"],
                   issued.claims["exp"])
    return {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": client.access_token_lifetime,
        "scope": issued.claims["scope"],
    }
