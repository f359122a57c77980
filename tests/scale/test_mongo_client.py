"""The MongoDB client: majority writes, primary reads, any connection string."""

from __future__ import annotations

import asyncio

from pymongo import MongoClient, ReadPreference

from servicekit.settings import MongoSettings
from servicekit.stores import create_mongo


def settings_for(url: str) -> MongoSettings:
    return MongoSettings(url=url, database="scale_client_test", server_selection_timeout=2.0,
                         operation_timeout=5.0)


def test_writes_wait_for_majority(mongo_url):
    client = create_mongo(settings_for(mongo_url), "test")
    assert client.write_concern.document == {"w": "majority", "wtimeout": 5000}


def test_reads_use_primary_despite_url(mongo_url):
    client = create_mongo(settings_for(f"{mongo_url.rstrip('/')}/?readPreference=secondaryPreferred"), "test")
    assert client.read_preference == ReadPreference.PRIMARY


def test_replica_set_url_writes_and_reads_back(mongo_url):
    """Connect by replica set name, as a production URL does, and read a majority write back."""
    with MongoClient(mongo_url, serverSelectionTimeoutMS=5000) as probe:
        set_name = probe.admin.command("hello")["setName"]
    url = f"{mongo_url.rstrip('/')}/?replicaSet={set_name}"

    async def write_then_read():
        client = create_mongo(settings_for(url), "test")
        try:
            collection = client["scale_client_test"]["movies"]
            await collection.insert_one({"_id": "m1", "title": "Heat"})
            return await collection.find_one({"_id": "m1"})
        finally:
            await client.close()

    assert asyncio.run(write_then_read()) == {"_id": "m1", "title": "Heat"}
