"""Which user claims each token and the UserInfo endpoint release.

Identity scopes release claims into the ID token and from UserInfo (OpenID Connect
Core 1.0 §5.4); API resources name the user claims their access tokens carry. The
mapping is configuration, in conf/clients.toml.
"""

from __future__ import annotations

from typing import Any

from .clients import Registry
from .users import User


def identity_claims(registry: Registry, user: User, scopes: tuple[str, ...]) -> dict[str, Any]:
    """Return `sub` plus the user's claims that the granted identity scopes release.

    A claim the user does not have is left out, never sent as null.
    """
    claims: dict[str, Any] = {"sub": user.sub}
    for scope in scopes:
        identity_scope = registry.identity_scopes.get(scope)
        if identity_scope is None:
            continue
        for name in identity_scope.claims:
            if name != "sub" and name in user.claims:
                claims[name] = user.claims[name]
    return claims


def access_token_claims(registry: Registry, user: User, audience: tuple[str, ...]) -> dict[str, Any]:
    """Return the user claims that the access token's API resources ask for."""
    claims: dict[str, Any] = {}
    for name in audience:
        resource = registry.resources.get(name)
        if resource is None:
            continue
        for claim in resource.user_claims:
            if claim in user.claims:
                claims[claim] = user.claims[claim]
    return claims
