"""Consent the user gave a client, kept in MongoDB so it survives a Redis flush.

One document per user and client: `{"_id": "<sub> <client_id>", "scopes": [...]}`.
Consent covers the scopes it lists, and a request for more shows the page again.
"""

from __future__ import annotations

import datetime

from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "consents"


class ConsentStore:
    def __init__(self, db: AsyncDatabase):
        self._consents = db[COLLECTION]

    async def covers(self, sub: str, client_id: str, scopes: tuple[str, ...]) -> bool:
        """Return True if the user already consented to every scope in `scopes`."""
        document = await self._consents.find_one({"_id": f"{sub} {client_id}"})
        return document is not None and set(scopes) <= set(document.get("scopes", []))

    async def grant(self, sub: str, client_id: str, scopes: tuple[str, ...]) -> None:
        """Add `scopes` to the user's consent for the client."""
        await self._consents.update_one(
            {"_id": f"{sub} {client_id}"},
            {"$addToSet": {"scopes": {"$each": list(scopes)}},
             "$set": {"updated_at": datetime.datetime.now(datetime.timezone.utc)}},
            upsert=True)
