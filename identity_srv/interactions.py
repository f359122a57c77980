"""Authorization requests waiting for the user to sign in or consent, kept in Redis.

When the authorization endpoint needs the user, it parks the checked request under
a random interaction id (`<prefix>interaction:{<sha256 of id>}`) and sends the
browser to the login or consent page with that id. The pages record which
session completed each step, so that `prompt=login` and `prompt=consent` are
satisfied only by the browser that did the step.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, replace

import redis.asyncio

from .authorization import AuthorizationRequest


@dataclass(frozen=True)
class Interaction:
    request: AuthorizationRequest
    # The sid of the session that signed in, or consented, for this request.
    login_sid: str | None = None
    consent_sid: str | None = None


class InteractionStore:
    """Pending interactions; `lifetime` is how long the user has to finish, in seconds."""

    def __init__(self, client: redis.asyncio.Redis, prefix: str, lifetime: int):
        self._redis = client
        self._prefix = prefix
        self.lifetime = lifetime

    def _key(self, interaction_id: str) -> str:
        digest = hashlib.sha256(interaction_id.encode("utf-8")).hexdigest()
        return f"{self._prefix}interaction:{{{digest}}}"

    async def save(self, interaction: Interaction, interaction_id: str | None = None) -> str:
        """Store `interaction` (under a new id unless one is given) and return the id."""
        interaction_id = interaction_id or secrets.token_urlsafe(24)
        payload = json.dumps({"request": interaction.request.to_dict(), "login_sid": interaction.login_sid,
                              "consent_sid": interaction.consent_sid}, separators=(",", ":"))
        await self._redis.set(self._key(interaction_id), payload, ex=self.lifetime)
        return interaction_id

    async def load(self, interaction_id: str) -> Interaction | None:
        """Return the interaction, or None if it never existed, expired or finished."""
        if not interaction_id or len(interaction_id) > 64:
            return None
        payload = await self._redis.get(self._key(interaction_id))
        if payload is None:
            return None
        data = json.loads(payload)
        return Interaction(request=AuthorizationRequest.from_dict(data["request"]),
                           login_sid=data["login_sid"], consent_sid=data["consent_sid"])

    async def update(self, interaction_id: str, interaction: Interaction, **changes) -> None:
        await self.save(replace(interaction, **changes), interaction_id)

    async def finish(self, interaction_id: str) -> None:
        await self._redis.delete(self._key(interaction_id))
