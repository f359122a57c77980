"""scripts/seed_movies.py: the demo file, user files in JSON and CSV, rejections, progress."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.movies.conftest import ALICE, BOB, DATABASE
from tests.support.processes import ROOT

SCRIPT = ROOT / "scripts" / "seed_movies.py"
DEMO_COUNT = len(json.loads((ROOT / "conf" / "movies.json").read_text())["movies"])


def run_seed(mongo_url: str, *arguments: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "MONGO_URL": mongo_url, "MOVIES__MONGO__DATABASE": DATABASE}
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, arguments)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def seed_url(movies_db, mongo_proc):
    return mongo_proc.url


def test_demo_file_is_idempotent(seed_url, movies_db):
    first = run_seed(seed_url)
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"seed_movies: {DEMO_COUNT} inserted, 0 updated, 0 unchanged, 0 rejected\n"
    second = run_seed(seed_url)
    assert second.stdout == f"seed_movies: 0 inserted, 0 updated, {DEMO_COUNT} unchanged, 0 rejected\n"
    assert movies_db["movies"].count_documents({}) == DEMO_COUNT

    godfather = movies_db["movies"].find_one({"title": "The Godfather"})
    assert {key: godfather[key] for key in ("genre", "rating", "releaseDate", "owner", "ownerName", "version")} == {
        "genre": "Crime", "rating": 9.2, "releaseDate": "1972-03-24", "owner": BOB, "ownerName": "Bob Smith",
        "version": 1}
    assert movies_db["movies"].find_one({"title": "The Shawshank Redemption"})["owner"] == ALICE
    assert "title_releaseDate" in movies_db["movies"].index_information()


def test_demo_movies_served_by_api(seed_url, api, alice):
    assert run_seed(seed_url).returncode == 0
    response = api("GET", "/api/movies?limit=100&sort=-rating", alice)
    assert response.headers["X-Total-Count"] == str(DEMO_COUNT)
    assert response.json()[0]["title"] == "The Shawshank Redemption"
    owned = api("GET", f"/api/movies?owner={ALICE}&limit=100", alice).json()
    assert len(owned) == (DEMO_COUNT + 1) // 2


def test_json_file_rejections_name_lines(seed_url, movies_db, tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(
        '[\n'
        '  {"title": "Heat", "genre": "Crime", "rating": 8.3, "releaseDate": "1995-12-15", "owner": "alice"},\n'
        '  {"title": "Ran", "genre": "Drama", "rating": 11, "releaseDate": "1985-06-01", "owner": "818727"},\n'
        '  {"title": "Ran", "genre": "Drama", "rating": 8.2, "releaseDate": "not a date",\n'
        '   "owner": "818727"},\n'
        '  "Brazil",\n'
        '  {"title": "Heat", "genre": "Crime", "rating": 7.0, "releaseDate": "1995-12-15", "owner": "bob"},\n'
        '  {"title": "Ikiru", "genre": "Drama", "rating": 8.3, "releaseDate": "1952-10-09", "owner": "999"}\n'
        ']\n')
    result = run_seed(seed_url, path)
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "seed_movies: mine.json line 3 rejected: rating must be a number from 0 to 10",
        "seed_movies: mine.json line 4 rejected: releaseDate must be a date in the form YYYY-MM-DD",
        "seed_movies: mine.json line 6 rejected: a movie must be a JSON object",
        "seed_movies: mine.json line 7 rejected: repeats the movie on line 2 (same title and releaseDate)",
        "seed_movies: 2 inserted, 0 updated, 0 unchanged, 4 rejected",
    ]
    assert movies_db["movies"].find_one({"title": "Heat"})["owner"] == ALICE
    assert movies_db["movies"].find_one({"title": "Heat"})["ownerName"] == "Alice Smith"
    assert movies_db["movies"].find_one({"title": "Ikiru"})["owner"] == "999"
    assert movies_db["movies"].find_one({"title": "Ikiru"})["ownerName"] is None
    assert run_seed(seed_url, path, "--strict").returncode == 1


def test_object_file_with_own_owners(seed_url, movies_db, tmp_path):
    path = tmp_path / "team.json"
    path.write_text(json.dumps({
        "owners": {"carol": "5551234"},
        "movies": [{"title": "Heat", "genre": "Crime", "rating": 8.3, "releaseDate": "1995-12-15",
                    "owner": "carol"}]}, indent=2))
    result = run_seed(seed_url, path)
    assert result.stdout == "seed_movies: 1 inserted, 0 updated, 0 unchanged, 0 rejected\n"
    assert movies_db["movies"].find_one({"title": "Heat"})["owner"] == "5551234"


def test_owners_table_with_display_names(seed_url, movies_db, tmp_path):
    path = tmp_path / "team.json"
    movie = {"title": "Heat", "genre": "Crime", "rating": 8.3, "releaseDate": "1995-12-15", "owner": "carol"}
    path.write_text(json.dumps({"owners": {"carol": {"sub": "5551234", "name": "Carol Jones"}},
                                "movies": [movie]}, indent=2))
    assert run_seed(seed_url, path).returncode == 0
    stored = movies_db["movies"].find_one({"title": "Heat"})
    assert (stored["owner"], stored["ownerName"]) == ("5551234", "Carol Jones")

    # A new display name for the same owner updates the movie.
    path.write_text(json.dumps({"owners": {"carol": {"sub": "5551234", "name": "Carol Smith"}},
                                "movies": [movie]}, indent=2))
    result = run_seed(seed_url, path)
    assert result.stdout == "seed_movies: 0 inserted, 1 updated, 0 unchanged, 0 rejected\n"
    assert movies_db["movies"].find_one({"title": "Heat"})["ownerName"] == "Carol Smith"


@pytest.mark.parametrize("owners", [{"carol": {"name": "Carol Jones"}}, {"carol": 5551234},
                                    {"carol": {"sub": "5551234", "email": "carol@example.org"}}])
def test_malformed_owners_table_is_refused(seed_url, movies_db, tmp_path, owners):
    path = tmp_path / "team.json"
    path.write_text(json.dumps({"owners": owners, "movies": []}))
    result = run_seed(seed_url, path)
    assert result.returncode == 2
    assert "`owners` must map names to subject strings or to objects" in result.stderr
    assert movies_db["movies"].count_documents({}) == 0


def test_csv_file_updates_and_rejects(seed_url, movies_db, tmp_path):
    assert run_seed(seed_url).returncode == 0
    path = tmp_path / "mine.csv"
    path.write_text(
        "title,genre,rating,releaseDate,imageUrl,owner\n"
        "The Godfather,Crime,9.1,1972-03-24,,bob\n"
        "Heat,Crime,8.3,1995-12-15,https://example.org/heat.jpg,alice\n"
        "Ran,Drama,high,1985-06-01,,alice\n"
        "Ikiru,Drama,8.3,1952-10-09,,\n"
        "\"Quoted, Title\",Drama,7.5,1960-01-01,,818727\n")
    result = run_seed(seed_url, path)
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "seed_movies: mine.csv line 4 rejected: rating must be a number from 0 to 10",
        "seed_movies: mine.csv line 5 rejected: owner is required: a name from the owners table or a subject",
        "seed_movies: 2 inserted, 1 updated, 0 unchanged, 2 rejected",
    ]
    godfather = movies_db["movies"].find_one({"title": "The Godfather"})
    assert godfather["rating"] == 9.1
    assert godfather["imageUrl"] is None
    assert godfather["version"] == 2
    assert movies_db["movies"].find_one({"title": "Quoted, Title"})["owner"] == ALICE


def test_csv_without_required_columns(seed_url, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("name,year\nHeat,1995\n")
    result = run_seed(seed_url, path)
    assert result.returncode == 2
    assert result.stderr == (f"seed_movies: {path}: the header row lacks title, genre, rating, releaseDate, "
                             f"owner; expected title,genre,rating,releaseDate,imageUrl,owner\n")


def test_invalid_json_file(seed_url, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[{"title": ')
    result = run_seed(seed_url, path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"seed_movies: {path} is not valid JSON: ")


def test_large_file_shows_progress(seed_url, movies_db, tmp_path):
    path = tmp_path / "large.csv"
    rows = [f"Film {index},Drama,{index % 11},{1900 + index % 120}-01-01,,alice" for index in range(2500)]
    path.write_text("title,genre,rating,releaseDate,imageUrl,owner\n" + "\n".join(rows) + "\n")
    result = run_seed(seed_url, path, "--progress-every", "1000")
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "seed_movies: 1000/2500 movies read (40%)",
        "seed_movies: 2000/2500 movies read (80%)",
        "seed_movies: 2500/2500 movies read (100%)",
    ]
    assert result.stdout == "seed_movies: 2500 inserted, 0 updated, 0 unchanged, 0 rejected\n"
    assert movies_db["movies"].count_documents({}) == 2500
