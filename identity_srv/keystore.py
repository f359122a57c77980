"""Signing keys in MongoDB: creation, rotation and retirement, safe across instances.

Each key is one document, `_id` being its `kid`:

    generation    1, 2, 3, ...; a unique index, so two instances that race to
                  create the same generation store one key, not two
    alg           "RS256" or "ES256"
    state         "announced" (in the JWKS, not signing yet), "signing", "retired"
                  (in the JWKS until tokens it signed have expired)
    private_pem   PKCS#8 PEM, encrypted with `keys.encryption_passphrase`
    public_jwk    the public key as a JWK, with kid, alg and use
    created_at, activates_at, retired_at, removes_at   Unix seconds

A rotation inserts generation n+1 in the "announced" state with `activates_at` one
announce period ahead. `advance` then moves keys along by time: the announced key
signs from `activates_at`, the previous signing key is retired at that moment and
deleted once every token it signed has expired. Every instance runs `advance` on
each reload. Each of its writes is conditional on the state it changes, so
instances running it at once reach the same result.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.utils import base64url_encode
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

app_log = logging.getLogger("identity_srv.app")

ANNOUNCED = "announced"
SIGNING = "signing"
RETIRED = "retired"

RSA_KEY_BITS = 2048


class KeyDecryptionError(Exception):
    """A stored private key could not be decrypted with the configured passphrase."""


@dataclass(frozen=True)
class StoredKey:
    """One key document, with the private key still encrypted."""

    kid: str
    generation: int
    algorithm: str
    state: str
    private_pem: bytes
    public_jwk: dict[str, Any]
    created_at: float
    activates_at: float
    removes_at: float | None

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "StoredKey":
        return cls(kid=doc["_id"], generation=doc["generation"], algorithm=doc["alg"], state=doc["state"],
                   private_pem=bytes(doc["private_pem"]), public_jwk=dict(doc["public_jwk"]),
                   created_at=doc["created_at"], activates_at=doc["activates_at"],
                   removes_at=doc.get("removes_at"))


def thumbprint(public_jwk: dict[str, Any]) -> str:
    """Return the RFC 7638 SHA-256 thumbprint of a public RSA or EC JWK, base64url-encoded."""
    members = ("e", "kty", "n") if public_jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({name: public_jwk[name] for name in members}, separators=(",", ":"), sort_keys=True)
    return base64url_encode(hashlib.sha256(canonical.encode("ascii")).digest()).decode("ascii")


def public_jwk_of(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, algorithm: str) -> dict[str, Any]:
    """Return the public JWK of `private_key` with `kid` (its thumbprint), `alg` and `use`."""
    if algorithm == "RS256":
        jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    jwk = {name: value for name, value in jwk.items() if name in ("kty", "n", "e", "crv", "x", "y")}
    return {**jwk, "kid": thumbprint(jwk), "alg": algorithm, "use": "sig"}


def generate_private_key(algorithm: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    return ec.generate_private_key(ec.SECP256R1())


def decrypt_private_key(key: StoredKey, passphrase: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """Decrypt a stored private key; raise KeyDecryptionError naming the kid."""
    try:
        return serialization.load_pem_private_key(key.private_pem, passphrase.encode("utf-8"))
    except (ValueError, TypeError):
        raise KeyDecryptionError(
            f"signing key {key.kid} cannot be decrypted: keys.encryption_passphrase differs from the "
            f"passphrase it was stored with") from None


class KeyStore:
    """The signing-key collection, with the rules for creating, rotating and retiring keys.

    `retire_after` is the number of seconds a key stays in the JWKS after it stops
    signing: the maximum access token lifetime plus the reload interval and a margin.
    """

    def __init__(self, collection: AsyncCollection, passphrase: str, algorithm: str,
                 announce_period: float, retire_after: float):
        self.collection = collection
        self.passphrase = passphrase
        self.algorithm = algorithm
        self.announce_period = announce_period
        self.retire_after = retire_after

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("generation", ASCENDING)], unique=True, name="generation_unique")

    async def list_keys(self) -> list[StoredKey]:
        """Return every stored key, newest generation first."""
        docs = await self.collection.find({}).sort("generation", DESCENDING).to_list()
        return [StoredKey.from_document(doc) for doc in docs]

    async def _insert(self, generation: int, state: str, now: float, activates_at: float) -> str | None:
        """Insert a new key of `generation`; return its kid, or None if another instance won."""
        private_key = await asyncio.to_thread(generate_private_key, self.algorithm)
        public_jwk = public_jwk_of(private_key, self.algorithm)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self.passphrase.encode("utf-8")))
        doc = {"_id": public_jwk["kid"], "generation": generation, "alg": self.algorithm, "state": state,
               "private_pem": pem, "public_jwk": public_jwk, "created_at": now,
               "activates_at": activates_at, "retired_at": None, "removes_at": None}
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            return None
        return public_jwk["kid"]

    async def create_first_key(self, now: float | None = None) -> str | None:
        """Create a key that signs at once if none exists; return its kid, or None if one exists.

        No resource server can have cached a JWKS before the first key exists, so the
        first key needs no announcement.
        """
        now = time.time() if now is None else now
        if await self.collection.count_documents({}, limit=1):
            return None
        kid = await self._insert(1, SIGNING, now, now)
        if kid:
            app_log.info("created the first signing key %s (%s)", kid, self.algorithm)
        return kid

    async def rotate(self, now: float | None = None) -> str | None:
        """Announce a new key that signs one announce period from now; return its kid.

        Returns None, creating nothing, when a key is already announced (a rotation
        is under way) or when another instance inserted the next generation first.
        With no key stored yet it creates the first key, which signs at once.
        """
        now = time.time() if now is None else now
        keys = await self.list_keys()
        if not keys:
            return await self.create_first_key(now)
        if any(key.state == ANNOUNCED for key in keys):
            return None
        generation = keys[0].generation + 1
        kid = await self._insert(generation, ANNOUNCED, now, now + self.announce_period)
        if kid:
            app_log.info("announced signing key %s (%s, generation %d); it signs from %s", kid,
                         self.algorithm, generation, time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                   time.gmtime(now + self.announce_period)))
        return kid

    async def rotation_due(self, interval: float, now: float | None = None) -> bool:
        """Return True if the newest key is older than `interval` seconds and none is announced."""
        now = time.time() if now is None else now
        keys = await self.list_keys()
        if not keys or any(key.state == ANNOUNCED for key in keys):
            return False
        return keys[0].created_at <= now - interval

    async def advance(self, now: float | None = None) -> None:
        """Move keys to the state their timestamps call for, and delete expired retired keys."""
        now = time.time() if now is None else now
        await self.collection.update_many({"state": ANNOUNCED, "activates_at": {"$lte": now}},
                                          {"$set": {"state": SIGNING}})

        # Only the newest signing key signs; each older one retires when the key
        # after it started signing, so `removes_at` is the same on every instance.
        signing = [key for key in await self.list_keys() if key.state == SIGNING]
        for newer, older in zip(signing, signing[1:]):
            result = await self.collection.update_one(
                {"_id": older.kid, "state": SIGNING},
                {"$set": {"state": RETIRED, "retired_at": newer.activates_at,
                          "removes_at": newer.activates_at + self.retire_after}})
            if result.modified_count:
                app_log.info("retired signing key %s; it leaves the JWKS at %s", older.kid,
                             time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                           time.gmtime(newer.activates_at + self.retire_after)))

        result = await self.collection.delete_many({"state": RETIRED, "removes_at": {"$lte": now}})
        if result.deleted_count:
            app_log.info("removed %d retired signing key(s) from the JWKS", result.deleted_count)
