"""Load movies into movies_srv's MongoDB database, idempotently.

    python scripts/seed_movies.py                  # the demo movies in conf/movies.json
    python scripts/seed_movies.py my_movies.csv    # your own file, JSON or CSV
    python scripts/seed_movies.py my.json --strict # exit 1 when any movie is rejected

A movie is identified by its title and release date: a movie already stored with
both is updated when its other fields differ and left alone otherwise, so running
the script again changes nothing. MongoDB is found as movies_srv finds it
(`MONGO_URL`, `mongo.url` and `mongo.database` in conf/).

File formats:

* JSON: a list of movies, or an object with `movies` (that list) and optionally
  `owners`, a table of owner names to subjects (`{"alice": "818727"}`), or to
  a subject and a display name (`{"alice": {"sub": "818727", "name": "Alice Smith"}}`);
* CSV: a header row with `title,genre,rating,releaseDate,imageUrl,owner`.

Each movie has the API's fields (`title`, `genre`, `rating`, `releaseDate`,
optional `imageUrl`) and an `owner`: a name from the owners table of the file or
of conf/movies.json, or else a subject used as it is. The display name becomes
the movie's `ownerName`, which is null for an owner without one. Each rejected movie is
reported with its line number and reason. The last line counts the movies
inserted, updated, unchanged and rejected.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pymongo import InsertOne, MongoClient, UpdateOne  # noqa: E402
from pymongo.errors import PyMongoError  # noqa: E402

from movies_srv.errors import InvalidFields  # noqa: E402
from movies_srv.model import validate_movie  # noqa: E402
from movies_srv.settings import load_settings  # noqa: E402
from movies_srv.store import COLLECTION, INDEXES  # noqa: E402
from servicekit.settings import SettingsError  # noqa: E402

DEMO_FILE = ROOT / "conf" / "movies.json"
CSV_COLUMNS = ("title", "genre", "rating", "releaseDate", "imageUrl", "owner")
# Writes sent to MongoDB in one bulk request.
BATCH_SIZE = 500
COMPARED_FIELDS = ("genre", "rating", "imageUrl", "owner", "ownerName")


class SeedFileError(Exception):
    """The file cannot be read as a whole; the message names the file and the problem."""


@dataclass(frozen=True)
class Owner:
    """An entry of an owners table: the subject a movie is stored with, and a display name."""

    sub: str
    name: str | None = None


@dataclass
class Record:
    line: int
    data: Any


@dataclass
class Summary:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[tuple[int, str]] = field(default_factory=list)

    def line(self) -> str:
        return (f"seed_movies: {self.inserted} inserted, {self.updated} updated, "
                f"{self.unchanged} unchanged, {len(self.rejections)} rejected")


# -- reading files -----------------------------------------------------------

def read_records(path: Path) -> tuple[list[Record], dict[str, Owner]]:
    """Return the file's movies with their line numbers, and its owners table."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SeedFileError(f"cannot read {path}: {exc}") from None
    if path.suffix.lower() == ".csv":
        return list(_csv_records(text, path)), {}
    return _json_records(text, path)


def _csv_records(text: str, path: Path) -> Iterator[Record]:
    reader = csv.DictReader(text.splitlines(keepends=True))
    missing = [name for name in CSV_COLUMNS if name != "imageUrl" and name not in (reader.fieldnames or [])]
    if missing:
        raise SeedFileError(f"{path}: the header row lacks {', '.join(missing)}; "
                            f"expected {','.join(CSV_COLUMNS)}")
    for row in reader:
        data: dict[str, Any] = {name: value for name, value in row.items() if name is not None}
        if None in row:
            data["(extra columns)"] = row[None]
        # CSV cells are text: a rating that reads as a number is one.
        try:
            data["rating"] = float(data["rating"])
        except (TypeError, ValueError):
            pass
        if data.get("imageUrl") == "":
            data["imageUrl"] = None
        yield Record(reader.line_num, data)


def _json_records(text: str, path: Path) -> tuple[list[Record], dict[str, Owner]]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise SeedFileError(f"{path} is not valid JSON: {exc}") from None
    owners: dict[str, Owner] = {}
    if isinstance(document, dict):
        owners = _owners_table(document.get("owners") or {}, path)
        if not isinstance(document.get("movies"), list):
            raise SeedFileError(f"{path}: expected a list of movies or an object with a `movies` list")
    elif not isinstance(document, list):
        raise SeedFileError(f"{path}: expected a list of movies or an object with a `movies` list")
    return list(_json_array_items(text)), owners


def _owners_table(table: Any, path: Path) -> dict[str, Owner]:
    problem = SeedFileError(f"{path}: `owners` must map names to subject strings or to objects "
                            f'with a "sub" string and an optional "name" string')
    if not isinstance(table, dict):
        raise problem
    owners = {}
    for key, value in table.items():
        if isinstance(value, str):
            owners[key] = Owner(value)
        elif (isinstance(value, dict) and isinstance(value.get("sub"), str)
              and isinstance(value.get("name"), (str, type(None))) and set(value) <= {"sub", "name"}):
            owners[key] = Owner(value["sub"], value.get("name"))
        else:
            raise problem
    return owners


def _json_array_items(text: str) -> Iterator[Record]:
    """Yield the movies array's items with the line each starts on.

    The file was already parsed once, so this second pass only locates the items:
    the standard decoder has no positions, `raw_decode` does.
    """
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if text[position] == "{":
        position = _movies_array_start(text, position, decoder)
    position = _skip_space(text, position + 1)
    while text[position] != "]":
        item, end = decoder.raw_decode(text, position)
        yield Record(text.count("\n", 0, position) + 1, item)
        position = _skip_space(text, end)
        if text[position] == ",":
            position = _skip_space(text, position + 1)


def _movies_array_start(text: str, position: int, decoder: json.JSONDecoder) -> int:
    position = _skip_space(text, position + 1)
    while True:
        key, position = decoder.raw_decode(text, position)
        position = _skip_space(text, _skip_space(text, position) + 1)  # past the colon
        if key == "movies":
            return position
        _, position = decoder.raw_decode(text, position)
        position = _skip_space(text, _skip_space(text, position) + 1)  # past the comma


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


# -- checking and writing ----------------------------------------------------

def clean_movie(record: Record, owners: dict[str, Owner]) -> dict[str, Any]:
    """Return the stored fields of a movie, owner included; raise ValueError with the reason."""
    if not isinstance(record.data, dict):
        raise ValueError("a movie must be a JSON object")
    data = dict(record.data)
    owner = data.pop("owner", None)
    problems: dict[str, str] = {}
    try:
        fields = validate_movie(data, partial=False, current={})
    except InvalidFields as exc:
        problems.update(exc.extra["fields"])
        fields = {}
    if not isinstance(owner, str) or not owner.strip():
        problems["owner"] = "is required: a name from the owners table or a subject"
    if problems:
        raise ValueError("; ".join(f"{name} {problem}" for name, problem in problems.items()))
    entry = owners.get(owner.strip(), Owner(owner.strip()))
    return {**fields, "owner": entry.sub, "ownerName": entry.name}


def seed(collection, records: list[Record], owners: dict[str, Owner], progress_every: int,
         out=sys.stdout) -> Summary:
    """Upsert `records` into `collection` by (title, releaseDate) and return the counts."""
    for name, keys in INDEXES:
        collection.create_index(keys, name=name)
    stored = {(doc["title"], doc["releaseDate"]): doc
              for doc in collection.find({}, {"title": 1, "releaseDate": 1, **dict.fromkeys(COMPARED_FIELDS, 1)})}
    summary = Summary()
    seen_at: dict[tuple[str, str], int] = {}
    batch: list[Any] = []
    show_progress = len(records) > progress_every

    for count, record in enumerate(records, start=1):
        try:
            movie = clean_movie(record, owners)
        except ValueError as exc:
            summary.rejections.append((record.line, str(exc)))
            movie = None
        if movie is not None:
            key = (movie["title"], movie["releaseDate"])
            if key in seen_at:
                summary.rejections.append((record.line, f"repeats the movie on line {seen_at[key]} "
                                                        f"(same title and releaseDate)"))
            else:
                seen_at[key] = record.line
                _queue_write(movie, stored.get(key), batch, summary)
        if len(batch) >= BATCH_SIZE:
            collection.bulk_write(batch, ordered=False)
            batch.clear()
        if show_progress and (count % progress_every == 0 or count == len(records)):
            print(f"seed_movies: {count}/{len(records)} movies read ({100 * count // len(records)}%)",
                  file=sys.stderr, flush=True)
    if batch:
        collection.bulk_write(batch, ordered=False)
    return summary


def _queue_write(movie: dict[str, Any], existing: dict[str, Any] | None, batch: list[Any],
                 summary: Summary) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    if existing is None:
        batch.append(InsertOne({**movie, "version": 1, "createdAt": now, "updatedAt": now}))
        summary.inserted += 1
    elif any(existing.get(name) != movie[name] for name in COMPARED_FIELDS):
        changes = {name: movie[name] for name in COMPARED_FIELDS}
        batch.append(UpdateOne({"_id": existing["_id"]},
                               {"$set": {**changes, "updatedAt": now}, "$inc": {"version": 1}}))
        summary.updated += 1
    else:
        summary.unchanged += 1


# -- command line --------------------------------------------------------------

def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Load movies into movies_srv's database, idempotently.")
    parser.add_argument("file", nargs="?", type=Path, default=DEMO_FILE,
                        help="a JSON or CSV file of movies (default: conf/movies.json)")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 when any movie is rejected")
    parser.add_argument("--progress-every", type=int, default=1000, metavar="N",
                        help="report progress every N movies on files with more than N (default: 1000)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    try:
        mongo = load_settings().common.mongo
        _, demo_owners = read_records(DEMO_FILE)
        records, owners = read_records(arguments.file)
    except (SettingsError, SeedFileError) as exc:
        print(f"seed_movies: {exc}", file=sys.stderr)
        return 2

    client = MongoClient(mongo.url, serverSelectionTimeoutMS=int(mongo.server_selection_timeout * 1000))
    try:
        summary = seed(client[mongo.database][COLLECTION], records, {**demo_owners, **owners},
                       max(arguments.progress_every, 1))
    except PyMongoError as exc:
        # The URL may carry a password, so only the error is shown.
        print(f"seed_movies: MongoDB failed ({type(exc).__name__}); check MONGO_URL or mongo.url", file=sys.stderr)
        return 2
    finally:
        client.close()

    for line, reason in summary.rejections:
        print(f"seed_movies: {arguments.file.name} line {line} rejected: {reason}")
    print(summary.line())
    return 1 if arguments.strict and summary.rejections else 0


if __name__ == "__main__":
    sys.exit(main())
