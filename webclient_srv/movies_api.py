"""The movies API, called through the gateway with the signed-in user's access token.

Routes on the gateway: `/movies` (list, create) and `/movies/{id}` (read, replace,
delete). Writes send `If-Match` with the ETag the page read, so a change made by
someone else in between ends in 412 instead of being overwritten.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tornado.httpclient import (
    AsyncHTTPClient,
    HTTPClientError,
    HTTPRequest,
    HTTPResponse,
)

from .errors import ApiFailed, MovieNotFound

# Messages shown to the person in the browser, by the API's status.
FRIENDLY_MESSAGES = {
    403: "You are not allowed to do this. Only the movie's owner or an administrator may change it.",
    404: "This movie does not exist, or it was deleted.",
    409: "This change conflicts with the current state of the movie. Reload it and try again.",
    412: "Someone else changed this movie after you opened it. Your change was not saved: "
         "reload the movie and apply your change again.",
    428: "The movie's version was missing from the request. Reload the movie and try again.",
    429: "Too many requests in a short time. Wait a minute, then try again.",
}
UNAVAILABLE_MESSAGE = "The movies service is unavailable right now. Try again in a moment."


class ApiUnauthorized(Exception):
    """The gateway returned 401: the access token is no longer accepted."""


class InvalidMovie(Exception):
    """The API rejected the fields (400); `fields` maps a field name to its problem."""

    def __init__(self, description: str, fields: Mapping[str, str]):
        super().__init__(description)
        self.description = description
        self.fields = dict(fields)


@dataclass(frozen=True)
class MoviePage:
    movies: list[dict[str, Any]]
    # None when the API sends no X-Total-Count header.
    total: int | None
    has_next: bool


class MoviesApi:
    def __init__(self, gateway_url: str, timeout: float):
        self.base = gateway_url
        self.timeout = timeout

    async def _call(self, method: str, path: str, token: str, *, body: Any = None,
                    headers: Mapping[str, str] | None = None) -> HTTPResponse:
        all_headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", **(headers or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        request = HTTPRequest(self.base + path, method=method, headers=all_headers, body=payload,
                              allow_nonstandard_methods=True, follow_redirects=False,
                              connect_timeout=self.timeout, request_timeout=self.timeout)
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (TimeoutError, OSError, HTTPClientError) as exc:
            raise ApiFailed(503, UNAVAILABLE_MESSAGE,
                            log_detail=f"{method} {path} through the gateway: {type(exc).__name__}: {exc}") from None
        if response.code >= 400:
            self._raise_for(response, method, path)
        return response

    def _raise_for(self, response: HTTPResponse, method: str, path: str) -> None:
        status = response.code
        body = _json(response)
        error = body.get("error") if isinstance(body, dict) else None
        detail = f"{method} {path}: {status} {error or ''}".rstrip()
        if status == 401:
            raise ApiUnauthorized(detail)
        if status == 400 and isinstance(body, dict):
            fields = body.get("fields") if isinstance(body.get("fields"), dict) else {}
            raise InvalidMovie(str(body.get("error_description") or "the movie is not valid"),
                               {str(name): str(problem) for name, problem in fields.items()})
        if status == 404:
            raise MovieNotFound(FRIENDLY_MESSAGES[404], log_detail=detail)
        if status in FRIENDLY_MESSAGES:
            raise ApiFailed(status, FRIENDLY_MESSAGES[status], log_detail=detail)
        if status >= 500:
            raise ApiFailed(503 if status in (502, 503, 504) else 502, UNAVAILABLE_MESSAGE, log_detail=detail)
        raise ApiFailed(502, "The movies service rejected the request.", log_detail=detail)

    async def list(self, token: str, *, page: int, limit: int, sort: str, title: str | None) -> MoviePage:
        query = {"page": str(page), "limit": str(limit), "sort": sort}
        if title:
            query["title"] = title
        response = await self._call("GET", "/movies?" + urllib.parse.urlencode(query), token)
        # The API sends a JSON array, the total in X-Total-Count, and a Link rel="next"
        # when another page follows.
        items = _json(response)
        if not isinstance(items, list):
            raise ApiFailed(502, UNAVAILABLE_MESSAGE, log_detail="GET /movies: the body is not a list of movies")
        count = response.headers.get("X-Total-Count", "")
        total = int(count) if count.isdigit() else None
        has_next = 'rel="next"' in response.headers.get("Link", "")
        return MoviePage(movies=[item for item in items if isinstance(item, dict)], total=total, has_next=has_next)

    async def get(self, token: str, movie_id: str) -> tuple[dict[str, Any], str | None]:
        """Return the movie and its ETag."""
        response = await self._call("GET", _movie_path(movie_id), token)
        return _movie(response), response.headers.get("ETag")

    async def create(self, token: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        response = await self._call("POST", "/movies", token, body=dict(fields))
        return _movie(response)

    async def replace(self, token: str, movie_id: str, fields: Mapping[str, Any], etag: str) -> dict[str, Any]:
        response = await self._call("PUT", _movie_path(movie_id), token, body=dict(fields),
                                    headers={"If-Match": etag})
        return _movie(response)

    async def delete(self, token: str, movie_id: str, etag: str) -> None:
        await self._call("DELETE", _movie_path(movie_id), token, headers={"If-Match": etag})


def _movie_path(movie_id: str) -> str:
    return "/movies/" + urllib.parse.quote(movie_id, safe="")


def _json(response: HTTPResponse) -> Any:
    try:
        return json.loads(response.body or b"null")
    except ValueError:
        return None


def _movie(response: HTTPResponse) -> dict[str, Any]:
    body = _json(response)
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise ApiFailed(502, UNAVAILABLE_MESSAGE, log_detail=f"the API sent no movie (status {response.code})")
    return body
