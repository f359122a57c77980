"""Path templates: `/movies/{id}` with placeholders and an optional catch-all `{*rest}`.

Templates match the request path exactly as the client sent it, segment by
segment. Nothing is percent-decoded or re-encoded: a placeholder captures the raw
segment (`a%2Fb` stays `a%2Fb`) and the downstream path is built from those raw
values, so a `%2F` can never turn into a path separator on the way through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LITERAL = 0
PLACEHOLDER = 1
CATCH_ALL = 2

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PLACEHOLDER = re.compile(rf"^\{{({_NAME})\}}$")
_CATCH_ALL = re.compile(rf"^\{{\*({_NAME})\}}$")
# Characters a literal segment may contain: RFC 3986 pchar, percent-encoding included.
_LITERAL = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@%-]+$")
# "." and ".." in any spelling, which a downstream would resolve as dot-segments.
_DOT_SEGMENT = re.compile(r"^(\.|%2e){1,2}$", re.IGNORECASE)


class TemplateError(ValueError):
    """A path template is malformed. The message names the part and the reason."""


@dataclass(frozen=True)
class Segment:
    kind: int
    # The literal text, or the placeholder's name.
    value: str


@dataclass(frozen=True)
class PathTemplate:
    """A parsed path template. `text` is the template as written."""

    text: str
    segments: tuple[Segment, ...]

    @classmethod
    def parse(cls, text: str) -> PathTemplate:
        """Parse `text`; raise `TemplateError` when it is not a valid template."""
        if not isinstance(text, str) or not text.startswith("/"):
            raise TemplateError(f"{text!r} must be a string starting with '/'")
        if text == "/":
            return cls(text, ())
        segments: list[Segment] = []
        parts = text[1:].split("/")
        for index, part in enumerate(parts):
            segments.append(_parse_segment(text, part, last=index == len(parts) - 1))
        names = [s.value for s in segments if s.kind != LITERAL]
        if len(names) != len(set(names)):
            raise TemplateError(f"{text!r} uses a placeholder name twice")
        return cls(text, tuple(segments))

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(s.value for s in self.segments if s.kind != LITERAL)

    @property
    def specificity(self) -> tuple:
        """A sort key: the more specific template sorts first.

        Segments compare left to right: a literal beats a placeholder, which beats
        the end of the template, which beats a catch-all. So `/movies/{id}` sorts
        before `/movies`, and `/movies` before `/movies/{*rest}`, which also matches
        `/movies`.
        """
        rank = {LITERAL: 0, PLACEHOLDER: 1, CATCH_ALL: 3}
        return tuple(rank[s.kind] for s in self.segments) + (2,)

    @property
    def shape(self) -> tuple:
        """The template with placeholder names erased: two templates with the same
        shape match exactly the same paths."""
        return tuple((s.kind, s.value if s.kind == LITERAL else "") for s in self.segments)

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Return the raw placeholder values when `raw_path` matches, else None."""
        parts = raw_path[1:].split("/") if raw_path != "/" else []
        values: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.kind == CATCH_ALL:
                values[segment.value] = "/".join(parts[index:])
                return values
            if index >= len(parts):
                return None
            part = parts[index]
            if segment.kind == LITERAL:
                if part != segment.value:
                    return None
            elif not part:
                return None
            else:
                values[segment.value] = part
        return values if len(parts) == len(self.segments) else None

    def expand(self, values: dict[str, str]) -> str:
        """Build a path from raw placeholder values, inserting them unchanged."""
        if not self.segments:
            return "/"
        return "/" + "/".join(s.value if s.kind == LITERAL else values[s.value] for s in self.segments)


def _parse_segment(text: str, part: str, last: bool) -> Segment:
    if match := _PLACEHOLDER.match(part):
        return Segment(PLACEHOLDER, match.group(1))
    if match := _CATCH_ALL.match(part):
        if not last:
            raise TemplateError(f"{text!r}: the catch-all {part} must be the last segment")
        return Segment(CATCH_ALL, match.group(1))
    if not part:
        raise TemplateError(f"{text!r} has an empty segment")
    if "{" in part or "}" in part:
        raise TemplateError(f"{text!r}: segment {part!r} must be a literal, {{name}} or {{*name}}")
    if not _LITERAL.match(part) or _DOT_SEGMENT.match(part):
        raise TemplateError(f"{text!r}: segment {part!r} is not a valid path segment")
    return Segment(LITERAL, part)


def has_dot_segment(raw_path: str) -> bool:
    """Return True if a segment of `raw_path` is `.` or `..`, also percent-encoded.

    A downstream resolves dot-segments (RFC 3986 section 5.2.4), so a placeholder
    value of `..` could reach a path the route does not expose.
    """
    return any(_DOT_SEGMENT.match(part) for part in raw_path.split("/"))
