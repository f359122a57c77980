"""Token revocation (RFC 7009) of JWT access tokens, through the shared deny list."""

from __future__ import annotations

import logging

from servicekit import denylist

from .clients import Client
from .errors import InvalidGrant
from .provider import Provider
from .tokens import verify_access_token

audit_log = logging.getLogger("identity_srv.audit")


async def revoke(provider: Provider, client: Client, token: str) -> None:
    """Deny `token` until it expires if it is a valid access token issued to `client`.

    `token_type_hint` is not needed: the provider tells token types apart itself,
    and RFC 7009 §2.1 lets it ignore the hint.

    An invalid, expired or unknown token is not an error (RFC 7009 §2.2: "invalid
    tokens do not cause an error response"), so that the endpoint cannot be used
    to test tokens. A valid token issued to another client raises InvalidGrant
    (RFC 7009 §2.1: the server "verifies whether the token was issued to the client
    making the revocation request"; RFC 6749 §5.2: invalid_grant covers a grant
    "issued to another client").
    """
    claims = verify_access_token(provider.keyring, provider.issuer, token)
    if claims is None:
        await _revoke_refresh_token(provider, client, token)
        return
    if claims.get("client_id") != client.client_id:
        audit_log.warning("revocation rejected: client=%s jti=%s belongs to another client",
                          client.client_id, claims.get("jti"))
        raise InvalidGrant("the token was issued to another client")
    await denylist.revoke(provider.redis, claims["jti"], claims["exp"])
    audit_log.info("access token revoked: client=%s jti=%s", client.client_id, claims["jti"])


async def _revoke_refresh_token(provider: Provider, client: Client, token: str) -> None:
    """Revoke the refresh token's whole family if it is live and was issued to `client`.

    RFC 7009 §2.1: revoking a refresh token should also invalidate the tokens of
    the same grant; here that is every refresh token of the family.
    """
    family = await provider.refresh_tokens.find(token)
    if family is None:
        return
    if family.client_id != client.client_id:
        audit_log.warning("revocation rejected: client=%s refresh family=%s belongs to another client",
                          client.client_id, family.family_id)
        raise InvalidGrant("the token was issued to another client")
    await provider.refresh_tokens.revoke_family(family.family_id)
    audit_log.info("refresh token revoked: client=%s family=%s", client.client_id, family.family_id)
