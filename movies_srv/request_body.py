"""The JSON request bodies of the movies API: media type, encoding and nesting.

A body must be UTF-8 JSON (RFC 8259 §8.1) sent as `application/json`, in any
case, optionally with `charset=utf-8`. PATCH also takes
`application/merge-patch+json`, the media type of RFC 7396. Any other media
type, another charset or a missing `Content-Type` gets 415. The size is bounded
before this by `http.max_body_bytes` (413).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import InvalidFields, UnsupportedMediaType

JSON = "application/json"
MERGE_PATCH_JSON = "application/merge-patch+json"

# A movie is one flat object (depth 1). The limit leaves room for a wrong but
# harmless value, such as an array in place of a string, to get its field error.
# Python's json decoder recurses once per level, so without a limit a body of
# 100,000 "[" raises RecursionError.
MAX_JSON_DEPTH = 10

# A JSON string (escapes included) or one bracket.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def check_content_type(header: str | None, media_types: tuple[str, ...]) -> None:
    """Raise `UnsupportedMediaType` unless `header` is one of `media_types` in UTF-8."""
    accepted = " or ".join(media_types)
    if header is None or not header.strip():
        raise UnsupportedMediaType(f"the request has no Content-Type: send the body as {accepted}")

    media_type, _, parameter_text = header.partition(";")
    parameters = [parameter.strip() for parameter in parameter_text.split(";") if parameter.strip()]
    if media_type.strip().lower() not in media_types or not all(map(_is_utf8_charset, parameters)):
        raise UnsupportedMediaType(f"the body must be {accepted} in UTF-8, not {header.strip()}")


def _is_utf8_charset(parameter: str) -> bool:
    name, _, value = parameter.partition("=")
    return name.strip().lower() == "charset" and value.strip().strip('"').lower() == "utf-8"


def parse_json(body: bytes) -> Any:
    """Return the decoded JSON of `body`; raise `InvalidFields` naming `body` otherwise."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidFields({"body": "is not valid UTF-8"}) from None

    if _nesting_depth(text) > MAX_JSON_DEPTH:
        raise InvalidFields({"body": f"nests arrays and objects more than {MAX_JSON_DEPTH} levels deep"})

    try:
        return json.loads(text)
    except ValueError:
        raise InvalidFields({"body": "is not valid JSON"}) from None


def _nesting_depth(text: str) -> int:
    """Return how deep arrays and objects nest in `text`, brackets inside strings not counted.

    Stops counting past `MAX_JSON_DEPTH`. The count is exact for valid JSON only,
    which is all that matters, because invalid JSON is rejected anyway.
    """
    depth = deepest = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                break
        elif token in ("]", "}"):
            depth -= 1
    return deepest
