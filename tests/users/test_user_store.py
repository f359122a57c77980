"""Users in MongoDB, password hashing, and the seed script, against a real SecantusDB."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest
from pymongo import MongoClient

from identity_srv.passwords import HASH_THREAD_NICENESS, PasswordHasher
from identity_srv.users import UserStore, username_key
from servicekit.stores import create_mongo
from servicekit.settings import MongoSettings
from tests.support.processes import ROOT


@pytest.fixture
def hasher():
    hasher = PasswordHasher(12)
    yield hasher
    hasher.close()


def run(coroutine):
    return asyncio.run(coroutine)


async def with_store(mongo_url, action):
    client = create_mongo(MongoSettings(mongo_url, "identity", 5.0, 5.0), "test")
    try:
        store = UserStore(client["identity"])
        await store.ensure_indexes()
        return await action(store)
    finally:
        await client.close()


def test_username_key_folds_case_and_width():
    assert username_key("Alice") == "alice"
    assert username_key("ＡＬＩＣＥ") == "alice"
    assert username_key("STRASSE") == username_key("straße")


def test_upsert_keeps_subject_and_ignores_case(mongo_url):
    async def action(store):
        first, created_first = await store.upsert("Carol", "h1", {"name": "Carol"}, sub="s-1")
        second, created_second = await store.upsert("carol", None, {"name": "Carol C"}, sub="s-other")
        found = await store.find_by_username("CAROL")
        return first, created_first, second, created_second, found

    first, created_first, second, created_second, found = run(with_store(mongo_url, action))
    assert created_first is True
    assert created_second is False
    assert second.sub == "s-1"
    assert second.password_hash == "h1"
    assert found.claims == {"name": "Carol C"}
    assert found.username == "carol"


def test_new_user_gets_random_subject(mongo_url):
    async def action(store):
        one, _ = await store.upsert("dave", "h", {})
        two, _ = await store.upsert("erin", "h", {})
        return one.sub, two.sub

    one, two = run(with_store(mongo_url, action))
    assert one.startswith("u-")
    assert len(one) == 34
    assert one != two


def test_unknown_user_not_found(mongo_url):
    assert run(with_store(mongo_url, lambda store: store.find_by_username("nobody"))) is None


def test_hash_verifies_only_right_password(hasher):
    async def action():
        stored = await hasher.hash("correct horse")
        return (await hasher.verify("correct horse", stored), await hasher.verify("correct hors", stored),
                stored)

    right, wrong, stored = run(action())
    assert right is True
    assert wrong is False
    assert stored.startswith("$2b$12$")


def test_long_passwords_differ_past_72_bytes(hasher):
    base = "x" * 80

    async def action():
        stored = await hasher.hash(base + "a")
        return await hasher.verify(base + "b", stored)

    assert run(action()) is False


def test_unknown_user_costs_a_verification(hasher):
    async def action():
        started = time.perf_counter()
        result = await hasher.verify("anything", None)
        return result, time.perf_counter() - started

    result, elapsed = run(action())
    assert result is False
    # A bcrypt verification at cost 12 takes far more than a millisecond; a shortcut would not.
    assert elapsed > 0.01


def test_malformed_stored_hash_is_false(hasher):
    assert run(hasher.verify("x", "not-a-bcrypt-hash")) is False


@pytest.mark.skipif(sys.platform != "linux", reason="nice values are per thread on Linux only")
def test_hashing_threads_run_below_the_event_loop(hasher):
    """The pool's threads are niced, so hashing yields the CPU to the event loop's thread."""
    own = os.getpriority(os.PRIO_PROCESS, 0)
    in_pool = hasher._pool.submit(os.getpriority, os.PRIO_PROCESS, 0).result(timeout=10)
    assert in_pool == min(own + HASH_THREAD_NICENESS, 19)
    # The calling thread keeps its priority.
    assert os.getpriority(os.PRIO_PROCESS, 0) == own


def test_cost_below_12_rejected():
    with pytest.raises(ValueError) as caught:
        PasswordHasher(10)
    assert str(caught.value) == "bcrypt cost must be from 12 to 16, not 10"


def seed(store_env, *args):
    return subprocess.run([sys.executable, "scripts/seed_users.py", *args], cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", **store_env}, capture_output=True, text=True,
                          timeout=120)


def test_seed_demo_users_twice(store_env, mongo_url):
    first = seed(store_env)
    second = seed(store_env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "user alice: created (sub 818727)",
        "user bob: created (sub 88421113)",
        "2 seeded, 0 rejected",
    ]
    assert second.stdout.splitlines()[:2] == ["user alice: updated (sub 818727)", "user bob: updated (sub 88421113)"]
    users = {doc["username"]: doc for doc in MongoClient(mongo_url).identity.users.find()}
    assert set(users) == {"alice", "bob"}
    assert users["bob"]["claims"]["role"] == ["admin"]
    assert users["alice"]["claims"]["address"]["locality"] == "Heidelberg"
    assert users["alice"]["password_hash"].startswith("$2b$12$")
    assert "alice" not in first.stdout.replace("user alice", "")


def test_seed_rejects_bad_entries_and_keeps_good(store_env, mongo_url, tmp_path):
    users_file = tmp_path / "users.json"
    users_file.write_text("""{"users": [
        {"username": "frank", "password": "long enough pw", "claims": {"role": ["user"]}},
        {"username": "gina", "password": "short"},
        {"username": "", "password": "long enough pw"},
        {"username": "hank", "password": "long enough pw", "claims": {"salary": 1}},
        {"username": "ivy", "password": "long enough pw", "claims": {"role": "admin"}}
    ]}""")
    result = seed(store_env, "--file", str(users_file))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("user frank: created (sub u-")
    assert lines[1:] == [
        "user #2: rejected: `password` must be a string of at least 8 characters",
        "user #3: rejected: `username` is missing or empty",
        "user #4: rejected: unknown claims salary: use OpenID Connect standard claims or `role`",
        "user #5: rejected: `claims.role` must be a list of role names",
        "1 seeded, 4 rejected",
    ]
    assert "long enough pw" not in result.stdout
    assert [doc["username"] for doc in MongoClient(mongo_url).identity.users.find()] == ["frank"]


def test_seed_reports_mongo_down(store_env):
    env = {**store_env, "MONGO_URL": "mongodb://127.0.0.1:1/", "IDENTITY__MONGO__SERVER_SELECTION_TIMEOUT": "0.3"}
    result = seed(env)
    assert result.returncode == 3
    assert result.stderr.startswith("MongoDB is unavailable (ServerSelectionTimeoutError): start it or set MONGO_URL")
