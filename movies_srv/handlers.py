"""The HTTP handlers of the movies API. They stay thin: access rules live in
`access`, validation in `model` and `listing`, storage in `store`."""

from __future__ import annotations

import logging
import re
import urllib.parse
from pathlib import Path
from typing import Any, Mapping

from servicekit.resource import AccessToken, AccessTokenValidator, authenticate
from servicekit.web import BaseHandler

from .access import MovieAccess
from .errors import MovieNotFound, PreconditionFailed, PreconditionRequired
from .listing import ListQuery, parse_list_query
from .model import etag, movie_json, validate_movie
from .request_body import JSON, MERGE_PATCH_JSON, check_content_type, parse_json
from .settings import PagingSettings, WriteSettings
from .store import MovieStore, parse_id

OPENAPI_PATH = Path(__file__).resolve().parent / "static" / "openapi.json"

# An entity tag in If-Match or If-None-Match: optional weak prefix, quoted opaque text.
_ENTITY_TAG = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')

audit = logging.getLogger("movies_srv.audit")


def entity_tags(header: str) -> tuple[bool, list[tuple[bool, str]]]:
    """Parse If-Match/If-None-Match: (is "*", [(is weak, tag)]); malformed parts are dropped."""
    if header.strip() == "*":
        return True, []
    return False, [(bool(weak), tag) for weak, tag in _ENTITY_TAG.findall(header)]


class MoviesBaseHandler(BaseHandler):
    """Shared steps: authenticate, read the JSON body, check If-Match, write a movie."""

    def initialize(self, movies: MovieStore, validator: AccessTokenValidator, access: MovieAccess,
                   paging: PagingSettings, writes: WriteSettings) -> None:
        self.movies = movies
        self.validator = validator
        self.access = access
        self.paging = paging
        self.writes = writes

    async def authorize(self, write: bool = False) -> AccessToken:
        token = await authenticate(self, self.validator, self.access.policy)
        if write:
            self.access.check_may_write(token)
        return token

    def json_body(self) -> Any:
        # RFC 7396 §4 registers application/merge-patch+json for merge patches.
        media_types = (JSON, MERGE_PATCH_JSON) if self.request.method == "PATCH" else (JSON,)
        check_content_type(self.request.headers.get("Content-Type"), media_types)
        return parse_json(self.request.body)

    async def find_movie(self, movie_id_text: str) -> dict[str, Any]:
        movie_id = parse_id(movie_id_text)
        document = await self.movies.get(movie_id) if movie_id is not None else None
        if document is None:
            raise MovieNotFound()
        return document

    def required_version(self, document: Mapping[str, Any]) -> int | None:
        """Return the version a write must find, or None for an unconditional write.

        If-Match uses the strong comparison (RFC 9110 §13.1.1), so a weak tag
        never matches. Raises 412 for a stale tag, 428 when If-Match is required
        and missing.
        """
        header = self.request.headers.get("If-Match")
        if header is None:
            if self.writes.require_if_match:
                raise PreconditionRequired()
            return None
        any_version, tags = entity_tags(header)
        if any_version:
            return None
        current = etag(document)
        if (False, current) not in tags:
            raise PreconditionFailed(current)
        return document["version"]

    def write_movie(self, document: Mapping[str, Any], status: int = 200) -> None:
        self.set_header("ETag", etag(document))
        self.set_header("Cache-Control", "private, no-cache")
        self.write_json(movie_json(document), status)


class MovieCollectionHandler(MoviesBaseHandler):
    """`/api/movies`: list with filters and pages, create."""

    async def get(self) -> None:
        await self.authorize()
        query = parse_list_query(self.request.query_arguments, self.paging)
        documents, more, total = await self.movies.list(query)
        self.set_header("X-Total-Count", str(total))
        if more:
            self.set_header("Link", f'<?{self._next_query(query, documents[-1])}>; rel="next"')
        self.set_header("Cache-Control", "private, no-cache")
        self.write_json([movie_json(document) for document in documents])

    head = get

    def _next_query(self, query: ListQuery, last_document: Mapping[str, Any]) -> str:
        # A relative reference keeps working behind a gateway that maps the path.
        parameters = [(name, items[-1].decode("utf-8", "replace"))
                      for name, items in self.request.query_arguments.items()
                      if name not in ("page", "cursor") and items]
        if query.page is not None:
            parameters.append(("page", str(query.page + 1)))
        else:
            parameters.append(("cursor", query.cursor_after(last_document)))
        return urllib.parse.urlencode(parameters)

    async def post(self) -> None:
        token = await self.authorize(write=True)
        owner_name = token.claims.get("name") if isinstance(token.claims.get("name"), str) else None
        fields = validate_movie(self.json_body(), partial=False,
                                current={"owner": token.subject, "ownerName": owner_name})
        document = await self.movies.insert(fields, owner=token.subject, owner_name=owner_name)
        audit.info("movie %s created by sub=%s client=%s", document["_id"], token.subject, token.client_id)
        # A relative reference (RFC 9110 §10.2.2, RFC 3986 §5.2) resolves against the
        # request's URL, to /api/movies/<id> here and to /movies/<id> through the
        # gateway, which maps /movies to /api/movies.
        self.set_header("Location", f"movies/{document['_id']}")
        self.write_movie(document, 201)


class MovieHandler(MoviesBaseHandler):
    """`/api/movies/{id}`: read, replace, patch, delete. Unknown or malformed ids are 404."""

    async def get(self, movie_id: str) -> None:
        await self.authorize()
        document = await self.find_movie(movie_id)
        if self._not_modified(document):
            self.set_header("ETag", etag(document))
            self.set_status(304)
            self.finish()
            return
        self.write_movie(document)

    head = get

    def _not_modified(self, document: Mapping[str, Any]) -> bool:
        # If-None-Match uses the weak comparison (RFC 9110 §13.1.2).
        header = self.request.headers.get("If-None-Match")
        if header is None:
            return False
        any_version, tags = entity_tags(header)
        return any_version or etag(document) in (tag for _, tag in tags)

    async def put(self, movie_id: str) -> None:
        await self._change(movie_id, partial=False)

    async def patch(self, movie_id: str) -> None:
        await self._change(movie_id, partial=True)

    async def _change(self, movie_id: str, partial: bool) -> None:
        token = await self.authorize(write=True)
        document = await self.find_movie(movie_id)
        self.access.check_may_change(token, document)
        version = self.required_version(document)
        current = {"id": str(document["_id"]), "owner": document["owner"],
                   "ownerName": document.get("ownerName"), "version": document["version"]}
        fields = validate_movie(self.json_body(), partial=partial, current=current)
        if not fields:
            # An empty merge patch, or one that only repeats the server-set fields,
            # changes nothing, so the version and the ETag stay as they are.
            self.write_movie(document)
            return

        updated = await self.movies.update(document["_id"], fields, version)
        if updated is None:
            await self._raise_lost_race(document["_id"])
        audit.info("movie %s %s by sub=%s client=%s (version %d)", updated["_id"],
                   "patched" if partial else "replaced", token.subject, token.client_id, updated["version"])
        self.write_movie(updated)

    async def delete(self, movie_id: str) -> None:
        token = await self.authorize(write=True)
        document = await self.find_movie(movie_id)
        self.access.check_may_change(token, document)
        version = self.required_version(document)
        if not await self.movies.delete(document["_id"], version):
            await self._raise_lost_race(document["_id"])
        audit.info("movie %s deleted by sub=%s client=%s", document["_id"], token.subject, token.client_id)
        self.set_status(204)
        self.finish()

    async def _raise_lost_race(self, movie_id) -> None:
        # Another write changed or deleted the movie between our read and our write.
        current = await self.movies.get(movie_id)
        if current is None:
            raise MovieNotFound()
        raise PreconditionFailed(etag(current))


class IdentityHandler(MoviesBaseHandler):
    """`/api/identity`: the caller's access token claims."""

    async def get(self) -> None:
        token = await self.authorize()
        self.set_header("Cache-Control", "no-store")
        self.write_json(dict(token.claims))

    head = get


class OpenApiHandler(BaseHandler):
    """`/api/openapi.json`: the OpenAPI 3 description of this API, public."""

    def initialize(self, document: bytes) -> None:
        self.document = document

    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(self.document)

    head = get
