"""The query of `GET /api/movies`: filters, sorting and pagination by page or cursor.

Query parameters:

* `genre` and `owner` match exactly; `title` matches titles that contain it,
  case-insensitively (a regular expression on the escaped text, because
  SecantusDB has no text indexes);
* `sort` is a field name, `-` in front for descending: `title` (the default),
  `genre`, `rating`, `releaseDate` or `id`. Ties are broken by id;
* `limit` is the page size; `page` (from 1) skips whole pages, while `cursor`
  continues after the last movie of the previous page, which stays correct while
  movies are added and costs no skipping. The two cannot be combined.

Each parameter takes one value, so a repeated one (`genre=Drama&genre=Comedy`)
is rejected rather than resolved to one of its values. Unknown parameters are
ignored.

A cursor is the base64url JSON of the sort key and the last movie's sort value and
id. It is opaque to clients and only valid with the same `sort`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

from bson import ObjectId
from bson.errors import InvalidId

from .errors import InvalidFields
from .settings import PagingSettings

SORT_FIELDS = {"title": "title", "genre": "genre", "rating": "rating", "releaseDate": "releaseDate",
               "id": "_id"}
MAX_FILTER_LENGTH = 200
QUERY_PARAMETERS = ("genre", "owner", "title", "sort", "limit", "page", "cursor")


@dataclass(frozen=True)
class ListQuery:
    """A parsed list request."""

    filter: dict[str, Any]
    sort_name: str
    descending: bool
    limit: int
    page: int | None
    # (sort value, id) of the last movie of the previous page.
    after: tuple[Any, ObjectId] | None

    @property
    def sort_field(self) -> str:
        return SORT_FIELDS[self.sort_name]

    def sort_spec(self) -> list[tuple[str, int]]:
        direction = -1 if self.descending else 1
        if self.sort_field == "_id":
            return [("_id", direction)]
        return [(self.sort_field, direction), ("_id", direction)]

    def mongo_filter(self) -> dict[str, Any]:
        """Return the filter, narrowed to the movies after the cursor when there is one."""
        if self.after is None:
            return self.filter
        value, last_id = self.after
        operator = "$lt" if self.descending else "$gt"
        if self.sort_field == "_id":
            keyset: dict[str, Any] = {"_id": {operator: last_id}}
        else:
            keyset = {"$or": [{self.sort_field: {operator: value}},
                              {self.sort_field: value, "_id": {operator: last_id}}]}
        return {"$and": [self.filter, keyset]} if self.filter else keyset

    def skip(self) -> int:
        return (self.page - 1) * self.limit if self.page else 0

    def cursor_after(self, document: Mapping[str, Any]) -> str:
        """Return the cursor that continues after `document`."""
        value = document[self.sort_field]
        payload = {"s": self.sort_key(), "v": str(value) if self.sort_field == "_id" else value,
                   "id": str(document["_id"])}
        raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def sort_key(self) -> str:
        return f"-{self.sort_name}" if self.descending else self.sort_name


def parse_list_query(arguments: Mapping[str, list[bytes]], paging: PagingSettings) -> ListQuery:
    """Parse the query string's arguments; raise `InvalidFields` naming each bad parameter."""
    problems: dict[str, str] = {}
    values: dict[str, str] = {}
    for name in QUERY_PARAMETERS:
        items = arguments.get(name, [])
        if len(items) > 1:
            problems[name] = "must be given only once"
        elif items:
            values[name] = items[0].decode("utf-8", "replace")

    movie_filter: dict[str, Any] = {}
    for name in ("genre", "owner", "title"):
        text = values.get(name)
        if text is None:
            continue
        if not text or len(text) > MAX_FILTER_LENGTH:
            problems[name] = f"must be 1 to {MAX_FILTER_LENGTH} characters"
        elif name == "title":
            movie_filter["title"] = {"$regex": re.escape(text), "$options": "i"}
        else:
            movie_filter[name] = text

    sort_key = values.get("sort", "title")
    sort_name = sort_key.removeprefix("-")
    if sort_name not in SORT_FIELDS:
        problems["sort"] = f"must be one of {', '.join(SORT_FIELDS)}, with - in front for descending"
        sort_name = "title"

    limit = _whole_number(values, "limit", paging.default_limit, 1, paging.max_limit, problems)
    page = _whole_number(values, "page", None, 1, None, problems)
    after = None
    if "cursor" in values:
        if page is not None:
            problems["page"] = "cannot be combined with cursor"
        after = _read_cursor(values["cursor"], sort_key, sort_name, problems)

    if problems:
        raise InvalidFields(problems, subject="query")
    return ListQuery(filter=movie_filter, sort_name=sort_name, descending=sort_key.startswith("-"),
                     limit=limit, page=page, after=after)


def _whole_number(values: Mapping[str, str], name: str, default: int | None, minimum: int,
                  maximum: int | None, problems: dict[str, str]) -> int | None:
    text = values.get(name)
    if text is None:
        return default
    bounds = f"from {minimum} to {maximum}" if maximum else f"of at least {minimum}"
    if not re.fullmatch(r"[0-9]{1,9}", text) or not (minimum <= int(text) <= (maximum or int(text))):
        problems[name] = f"must be a whole number {bounds}"
        return default
    return int(text)


def _read_cursor(text: str, sort_key: str, sort_name: str,
                 problems: dict[str, str]) -> tuple[Any, ObjectId] | None:
    try:
        payload = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        last_id = ObjectId(payload["id"])
        value = payload["v"]
        cursor_sort = payload["s"]
    except (ValueError, TypeError, KeyError, InvalidId, binascii.Error):
        problems["cursor"] = "is not a cursor from this API: use the Link header of the previous page"
        return None
    if cursor_sort != sort_key:
        problems["cursor"] = f"was made for sort={cursor_sort}, not sort={sort_key}"
        return None
    expected = (int, float) if sort_name == "rating" else str
    if isinstance(value, bool) or not isinstance(value, expected):
        problems["cursor"] = "is not a cursor from this API: use the Link header of the previous page"
        return None
    if sort_name == "id":
        value = last_id
    return value, last_id
