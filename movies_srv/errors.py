"""The wire errors of the movies API, one class per error code.

Bearer-token errors (401, 403 `insufficient_scope`) come from `servicekit.resource`.
"""

from __future__ import annotations

from typing import Mapping

from servicekit.errors import HttpProblem, InvalidRequest


class InvalidFields(InvalidRequest):
    """400 `invalid_request` naming each invalid field in `fields` (field -> problem)."""

    def __init__(self, fields: Mapping[str, str], subject: str = "movie"):
        listed = "; ".join(f"{name} {problem}" for name, problem in fields.items())
        super().__init__(f"invalid {subject}: {listed}", extra={"fields": dict(fields)})


class MovieNotFound(HttpProblem):
    status = 404
    error = "not_found"

    def __init__(self) -> None:
        super().__init__("no movie has this id")


class Forbidden(HttpProblem):
    """403 `forbidden`: the token is valid, but this caller may not change this movie."""

    status = 403
    error = "forbidden"


class PreconditionFailed(HttpProblem):
    """412: If-Match names a version that is no longer current (RFC 9110 §13.1.1)."""

    status = 412
    error = "precondition_failed"

    def __init__(self, current_etag: str):
        super().__init__("the movie was changed since you read it: fetch it again and reapply your change",
                         headers={"ETag": current_etag})


class PreconditionRequired(HttpProblem):
    """428: the server requires If-Match on writes (RFC 6585 §3)."""

    status = 428
    error = "precondition_required"

    def __init__(self) -> None:
        super().__init__("send If-Match with the ETag of the movie you read")


class UnsupportedMediaType(HttpProblem):
    """415: the body's `Content-Type` is missing, not JSON, or names a charset other than UTF-8."""

    status = 415
    error = "unsupported_media_type"
