"""The access rules for movies:

* Every request needs a valid access token with the API's scope, issued to a
  known client (`access.known_clients`).
* A new movie's owner is the caller's `sub`.
* Changing or deleting a movie needs its owner or the admin role.
* Machine tokens (client_credentials, whose `sub` is their `client_id`) may only
  read, unless `access.machine_tokens_may_write` is true.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from servicekit.resource import AccessToken, ClaimRequirement, Policy

from .errors import Forbidden
from .settings import AccessSettings


@dataclass(frozen=True)
class MovieAccess:
    policy: Policy
    admin: ClaimRequirement
    machine_tokens_may_write: bool

    @classmethod
    def from_settings(cls, settings: AccessSettings) -> "MovieAccess":
        return cls(
            policy=Policy(scopes=frozenset({settings.scope}),
                          claims=(ClaimRequirement("client_id", settings.known_clients),)),
            admin=ClaimRequirement.of("role", [settings.admin_role]),
            machine_tokens_may_write=settings.machine_tokens_may_write,
        )

    def check_may_write(self, token: AccessToken) -> None:
        """Raise `Forbidden` for a machine token unless machine writes are allowed."""
        if token.is_machine and not self.machine_tokens_may_write:
            raise Forbidden("machine tokens (client_credentials) may only read movies",
                            log_detail=f"write by machine client {token.client_id} rejected")

    def check_may_change(self, token: AccessToken, document: Mapping[str, Any]) -> None:
        """Raise `Forbidden` unless the caller owns the movie or has the admin role."""
        if document["owner"] == token.subject or self.admin.is_met(token.claims):
            return
        raise Forbidden("only the movie's owner or an admin may change or delete it",
                        log_detail=f"movie {document['_id']} is not owned by the caller")
