"""Users in MongoDB: subject, username, password hash and claims.

A user document:

    {"_id": <sub>, "username": "alice", "username_key": "alice",
     "password_hash": "$2b$12$...", "password_scheme": "bcrypt-sha256",
     "claims": {"name": ..., "email": ..., "address": {...}, "role": ["user"]},
     "created_at": <datetime>, "updated_at": <datetime>}

`_id` is the subject (`sub`): it never changes, even when the username does.
`username_key` is the username in Unicode case-folded NFKC form with a unique
index, so `Alice` and `alice` cannot both exist and either signs in.
"""

from __future__ import annotations

import datetime
import secrets
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from .passwords import SCHEME

COLLECTION = "users"

# The claims a user may carry, as OpenID Connect Core 1.0 §5.1 names them, plus
# `role` (a list). Anything else in a user file is rejected by the seed script.
STANDARD_CLAIMS = frozenset({
    "name", "given_name", "family_name", "middle_name", "nickname", "preferred_username",
    "profile", "picture", "website", "email", "email_verified", "gender", "birthdate",
    "zoneinfo", "locale", "phone_number", "phone_number_verified", "address", "updated_at",
    "role",
})


def username_key(username: str) -> str:
    """Return the form under which a username is unique and looked up."""
    return unicodedata.normalize("NFKC", username).casefold().strip()


def new_subject() -> str:
    """Return a new opaque subject: 128 random bits, never equal to a client id."""
    return "u-" + secrets.token_hex(16)


@dataclass(frozen=True)
class User:
    sub: str
    username: str
    password_hash: str | None
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def roles(self) -> list[str]:
        role = self.claims.get("role", [])
        return [role] if isinstance(role, str) else list(role)


def _user(document: dict[str, Any]) -> User:
    return User(
        sub=document["_id"],
        username=document["username"],
        password_hash=document.get("password_hash"),
        claims=dict(document.get("claims", {})),
    )


class UserStore:
    """Users in the `users` collection of the provider's database."""

    def __init__(self, db: AsyncDatabase):
        self._users = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        """Create the unique username index; safe to run from every instance at once."""
        await self._users.create_index([("username_key", ASCENDING)], unique=True, name="username_key_unique")

    async def find_by_username(self, username: str) -> User | None:
        document = await self._users.find_one({"username_key": username_key(username)})
        return _user(document) if document else None

    async def find_by_subject(self, sub: str) -> User | None:
        document = await self._users.find_one({"_id": sub})
        return _user(document) if document else None

    async def upsert(self, username: str, password_hash: str | None, claims: dict[str, Any],
                     sub: str | None = None) -> tuple[User, bool]:
        """Create the user or update the one with this username; return (user, created).

        An existing user keeps its subject; `sub` is used only when the user is new
        (for demo users with fixed subjects). With `password_hash` None an existing
        password is kept.
        """
        now = datetime.datetime.now(datetime.timezone.utc)
        update: dict[str, Any] = {"username": username, "claims": claims, "updated_at": now}
        if password_hash is not None:
            update["password_hash"] = password_hash
            update["password_scheme"] = SCHEME
        document = await self._users.find_one_and_update(
            {"username_key": username_key(username)},
            {"$set": update, "$setOnInsert": {"_id": sub or new_subject(), "created_at": now}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return _user(document), document["created_at"] == document["updated_at"]
