"""Indexes on owner, genre and title, created at start by every instance."""

from __future__ import annotations

from tests.movies.conftest import DATABASE, start_movies
from tests.support.processes import wait_for


def test_two_instances_create_indexes_once(issuer, redis_proc, mongo_proc, movies_db, tmp_path):
    movies_db["movies"].drop()
    first = start_movies(redis_proc.url, mongo_proc.url, issuer.url, tmp_path / "first.log")
    second = start_movies(redis_proc.url, mongo_proc.url, issuer.url, tmp_path / "second.log")
    try:
        for service in (first, second):
            wait_for(lambda: "movie indexes are in place" in service.log(), 20, message="indexes created")
    finally:
        assert first.stop() == 0
        assert second.stop() == 0
    indexes = movies_db.client[DATABASE]["movies"].index_information()
    assert {name: spec["key"] for name, spec in indexes.items()} == {
        "_id_": [("_id", 1)],
        "owner": [("owner", 1)],
        "genre": [("genre", 1)],
        "title": [("title", 1)],
        "title_releaseDate": [("title", 1), ("releaseDate", 1)],
    }
