"""User password hashing with bcrypt, off the event loop.

Passwords are low-entropy, so unlike client secrets they get a deliberately slow
hash: bcrypt with a cost of 12 or more. One verification at cost 12 takes about a
quarter of a second of CPU, so it runs in a thread pool (bcrypt releases the GIL);
the event loop keeps serving token and discovery requests meanwhile. On Linux the
pool's threads also run at a lower scheduling priority (their nice value plus 10),
so a burst of sign-ins that keeps every core busy hashing takes less CPU time
from the event loop's thread.

bcrypt reads only the first 72 bytes of its input, and bcrypt 5 rejects longer
input outright. The password is therefore hashed first with SHA-256 and
base64-encoded (44 bytes, no NUL bytes), so every byte of a long passphrase counts.
The stored scheme name, `bcrypt-sha256`, records this.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import bcrypt

SCHEME = "bcrypt-sha256"
MIN_COST = 12
MAX_COST = 16
# Added to the nice value of each hashing thread; the event loop's thread keeps its own.
HASH_THREAD_NICENESS = 10


def _prehash(password: str) -> bytes:
    digest = hashlib.sha256(password.encode("utf-8")).digest()
    return base64.b64encode(digest)


def _lower_thread_priority() -> None:
    """Raise the calling thread's nice value; on Linux, nice values belong to threads."""
    if sys.platform != "linux":
        return
    thread_id = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread_id, os.getpriority(os.PRIO_PROCESS, thread_id)
                       + HASH_THREAD_NICENESS)
    except OSError:
        # A container may forbid it; hashing then competes with the event loop as before.
        pass


class PasswordHasher:
    """Hash and verify user passwords in a dedicated thread pool.

    `cost` is bcrypt's log2 work factor. `workers` bounds how many hashes run at
    once; more than the number of cores only queues work inside the pool.
    """

    def __init__(self, cost: int = MIN_COST, workers: int | None = None):
        if not MIN_COST <= cost <= MAX_COST:
            raise ValueError(f"bcrypt cost must be from {MIN_COST} to {MAX_COST}, not {cost}")
        self.cost = cost
        self._pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1,
                                        thread_name_prefix="bcrypt", initializer=_lower_thread_priority)
        # Verified when the username is unknown, so that a failed sign-in takes the
        # same time whether or not the user exists.
        self._dummy_hash = bcrypt.hashpw(_prehash(os.urandom(16).hex()), bcrypt.gensalt(cost))

    def hash_sync(self, password: str) -> str:
        """Return the bcrypt hash of `password`; blocking, for scripts."""
        return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(self.cost)).decode("ascii")

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.hash_sync, password)

    def _check(self, password: str, stored: bytes) -> bool:
        try:
            return bcrypt.checkpw(_prehash(password), stored)
        except ValueError:
            # A malformed stored hash verifies nothing.
            return False

    async def verify(self, password: str, stored_hash: str | None) -> bool:
        """Return True if `password` matches `stored_hash`.

        With `stored_hash` None (unknown user) a dummy hash is verified instead and
        the result is False, so timing does not reveal whether the user exists.
        """
        loop = asyncio.get_running_loop()
        if stored_hash is None:
            await loop.run_in_executor(self._pool, self._check, password, self._dummy_hash)
            return False
        return await loop.run_in_executor(self._pool, self._check, password, stored_hash.encode("ascii"))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
