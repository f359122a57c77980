"""The movies collection in MongoDB: indexes, queries and versioned writes.

Every write increments the document's `version`, which the API sends as the
ETag. A write conditional on a version (If-Match) filters on it. Of two editors
that read the same version, only the first write matches, and the second finds
nothing and gets 412.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any, Mapping

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from servicekit.stores import UNAVAILABLE_ERRORS

from .listing import ListQuery

COLLECTION = "movies"

# Plain indexes: SecantusDB, the development server, has no text indexes.
INDEXES = [
    ("owner", [("owner", ASCENDING)]),
    ("genre", [("genre", ASCENDING)]),
    ("title", [("title", ASCENDING)]),
    ("title_releaseDate", [("title", ASCENDING), ("releaseDate", ASCENDING)]),
]

# Seconds between attempts to create the indexes while MongoDB is down at start.
INDEX_RETRY_SECONDS = 5.0

log = logging.getLogger("movies_srv.app")


def parse_id(text: str) -> ObjectId | None:
    """Return the ObjectId in `text`, or None when it is not one (the API returns 404)."""
    try:
        return ObjectId(text)
    except (InvalidId, TypeError):
        return None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


async def create_indexes(collection: AsyncCollection) -> None:
    """Create the indexes by name; creating an existing one is a no-op, so every
    instance may run this at start, also at the same time."""
    for name, keys in INDEXES:
        await collection.create_index(keys, name=name)


async def create_indexes_when_available(collection: AsyncCollection) -> None:
    """Create the indexes, retrying while MongoDB is unavailable; runs as a background task."""
    while True:
        try:
            await create_indexes(collection)
        except UNAVAILABLE_ERRORS as exc:
            log.warning("creating the movie indexes failed, retrying in %.0fs: %s: %s",
                        INDEX_RETRY_SECONDS, type(exc).__name__, exc)
            await asyncio.sleep(INDEX_RETRY_SECONDS)
            continue
        log.info("movie indexes are in place: %s", ", ".join(name for name, _ in INDEXES))
        return


class MovieStore:
    """Reads and writes movie documents; every method may raise the store's
    unavailable errors, which the request boundary turns into 503."""

    def __init__(self, collection: AsyncCollection):
        self.collection = collection

    async def get(self, movie_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": movie_id})

    async def list(self, query: ListQuery) -> tuple[list[dict[str, Any]], bool, int]:
        """Return one page of movies, whether another page follows, and the total count."""
        cursor = (self.collection.find(query.mongo_filter())
                  .sort(query.sort_spec()).skip(query.skip()).limit(query.limit + 1))
        documents = await cursor.to_list()
        total = await self.collection.count_documents(query.filter)
        return documents[:query.limit], len(documents) > query.limit, total

    async def insert(self, fields: Mapping[str, Any], owner: str, owner_name: str | None = None) -> dict[str, Any]:
        now = _now()
        document = {**fields, "owner": owner, "ownerName": owner_name, "version": 1, "createdAt": now,
                    "updatedAt": now}
        result = await self.collection.insert_one(document)
        document["_id"] = result.inserted_id
        return document

    async def update(self, movie_id: ObjectId, fields: Mapping[str, Any],
                     version: int | None) -> dict[str, Any] | None:
        """Set `fields` and bump the version; None when the movie (at `version`, if
        given) no longer exists."""
        selector: dict[str, Any] = {"_id": movie_id}
        if version is not None:
            selector["version"] = version
        return await self.collection.find_one_and_update(
            selector, {"$set": {**fields, "updatedAt": _now()}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER)

    async def delete(self, movie_id: ObjectId, version: int | None) -> bool:
        selector: dict[str, Any] = {"_id": movie_id}
        if version is not None:
            selector["version"] = version
        result = await self.collection.delete_one(selector)
        return result.deleted_count == 1
