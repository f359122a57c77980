"""A movie's fields: validation of request bodies and the JSON representation.

The JSON names are those of the reference architecture's API: `id`, `title`,
`genre`, `rating` (a number from 0 to 10), `releaseDate` (`YYYY-MM-DD`),
`imageUrl`, `owner`, plus `version`, the number the ETag carries. `ownerName` is
the owner's display name, from the `name` claim of the creator's token, or null
when the token had none. `id`, `owner`, `ownerName` and `version` are set by the
server; a body may repeat their current values.
"""

from __future__ import annotations

import datetime
import math
import re
import unicodedata
from typing import Any, Mapping
from urllib.parse import urlsplit

from .errors import InvalidFields

EDITABLE_FIELDS = ("title", "genre", "rating", "releaseDate", "imageUrl")
READ_ONLY_FIELDS = ("id", "owner", "ownerName", "version")
REQUIRED_FIELDS = ("title", "genre", "rating", "releaseDate")

MAX_TITLE_LENGTH = 200
MAX_GENRE_LENGTH = 100
MAX_URL_LENGTH = 2048
# Films exist from the 1870s; a date past 2100 is a typo rather than a planned release.
EARLIEST_RELEASE = datetime.date(1870, 1, 1)
LATEST_RELEASE = datetime.date(2100, 12, 31)
# ASCII digits only: `\d` would also match other scripts' digits.
_DATE_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def movie_json(document: Mapping[str, Any]) -> dict[str, Any]:
    """Return the API representation of a stored movie document."""
    return {
        "id": str(document["_id"]),
        "title": document["title"],
        "genre": document["genre"],
        "rating": document["rating"],
        "releaseDate": document["releaseDate"],
        "imageUrl": document.get("imageUrl"),
        "owner": document["owner"],
        "ownerName": document.get("ownerName"),
        "version": document["version"],
    }


def etag(document: Mapping[str, Any]) -> str:
    """Return the strong entity tag of a stored movie's current version."""
    return f'"{document["version"]}"'


def validate_movie(body: Any, *, partial: bool, current: Mapping[str, Any]) -> dict[str, Any]:
    """Return the editable fields of `body` as they are stored; raise `InvalidFields`.

    With `partial` (PATCH, RFC 7396 merge patch) only the fields present are
    checked, and null removes `imageUrl`. `current` has the server-set values
    (`id`, `owner`, `ownerName`, `version`; an absent one means the movie has none yet), which
    a body may repeat but not change.
    """
    if not isinstance(body, dict):
        raise InvalidFields({"body": "must be a JSON object"})
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}

    for name, value in body.items():
        if name in READ_ONLY_FIELDS:
            if name not in current or value != current[name]:
                problems[name] = "is set by the server and cannot be changed"
        elif name not in EDITABLE_FIELDS:
            problems[name] = "is not a movie field"
        else:
            problem = _check_field(name, value, values)
            if problem:
                problems[name] = problem

    if not partial:
        for name in REQUIRED_FIELDS:
            if name not in body:
                problems[name] = "is required"
        values.setdefault("imageUrl", None)

    if problems:
        raise InvalidFields(problems)
    return values


def _check_field(name: str, value: Any, values: dict[str, Any]) -> str | None:
    """Store the field's clean value in `values`, or return what is wrong with it."""
    if value is None:
        if name == "imageUrl":
            values[name] = None
            return None
        return "is required and cannot be null"
    checker = _CHECKERS[name]
    try:
        values[name] = checker(value)
    except ValueError as exc:
        return str(exc)
    return None


def _check_unicode(value: str) -> None:
    """Raise `ValueError` for a string that is not Unicode text.

    A JSON escape such as `\\ud800` decodes to a lone surrogate, which is no
    character, cannot be encoded as UTF-8 and so cannot be stored in BSON.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it contains an unpaired surrogate)") from None


def _has_control_character(value: str) -> bool:
    # Unicode category Cc: NUL and the other C0 controls, DEL and the C1 controls.
    return any(unicodedata.category(character) == "Cc" for character in value)


def _text(value: Any, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    _check_unicode(value)
    value = value.strip()
    if _has_control_character(value):
        raise ValueError("must not contain control characters")
    if len(value) > max_length:
        raise ValueError(f"must be at most {max_length} characters")
    return value


def check_title(value: Any) -> str:
    return _text(value, MAX_TITLE_LENGTH)


def check_genre(value: Any) -> str:
    return _text(value, MAX_GENRE_LENGTH)


def check_rating(value: Any) -> float:
    # bool is a subclass of int in Python, and `true` is no rating.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError("must be a number from 0 to 10")
    if not 0 <= value <= 10:
        raise ValueError("must be a number from 0 to 10")
    return float(value)


def check_release_date(value: Any) -> str:
    """Return the date, which must be a calendar date written exactly as `YYYY-MM-DD`.

    `date.fromisoformat` alone is not enough: since Python 3.11 it also reads
    other ISO 8601 forms, such as `2001-W05` (a week) and `20010203`.
    """
    message = "must be a date in the form YYYY-MM-DD"
    if not isinstance(value, str) or not _DATE_FORM.fullmatch(value):
        raise ValueError(message)
    try:
        parsed = datetime.date.fromisoformat(value)
    except ValueError:
        raise ValueError(message) from None
    if not EARLIEST_RELEASE <= parsed <= LATEST_RELEASE:
        raise ValueError(f"must be between {EARLIEST_RELEASE} and {LATEST_RELEASE}")
    return parsed.isoformat()


def check_image_url(value: Any) -> str | None:
    if value == "":
        return None
    if isinstance(value, str):
        _check_unicode(value)
    if not isinstance(value, str) or len(value) > MAX_URL_LENGTH or _has_control_character(value):
        raise ValueError(f"must be an http or https URL of at most {MAX_URL_LENGTH} characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http or https URL of at most {MAX_URL_LENGTH} characters")
    return value


_CHECKERS = {
    "title": check_title,
    "genre": check_genre,
    "rating": check_rating,
    "releaseDate": check_release_date,
    "imageUrl": check_image_url,
}
