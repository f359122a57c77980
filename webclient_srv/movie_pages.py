"""The movie pages: list, details, create, edit and delete, all through the gateway."""

from __future__ import annotations

import math
import re
import urllib.parse
from typing import Any

import tornado.web

from .errors import ApiFailed, Forbidden
from .movies_api import InvalidMovie, MoviesApi
from .pages import PageHandler, signed_in

PAGE_SIZE = 10
SORT_CHOICES = {
    "title": "Title (A to Z)",
    "-title": "Title (Z to A)",
    "-rating": "Rating (highest first)",
    "rating": "Rating (lowest first)",
    "-releaseDate": "Release date (newest first)",
    "releaseDate": "Release date (oldest first)",
    "genre": "Genre",
}
MAX_SEARCH_LENGTH = 200
FORM_FIELDS = ("title", "genre", "rating", "releaseDate", "imageUrl")
# An entity tag as the API sends it (RFC 9110 §8.8.3), kept in a hidden form field.
_ETAG = re.compile(r'^(W/)?"[\x21\x23-\x7e]{0,64}"$')

NOTICES = {
    "created": "The movie was added.",
    "saved": "Your changes were saved.",
    "deleted": "The movie was deleted.",
}


class MoviePage(PageHandler):
    def initialize(self, relying_party, movies: MoviesApi) -> None:  # type: ignore[override]
        super().initialize(relying_party)
        self.movies = movies

    def may_change(self, movie: dict[str, Any]) -> bool:
        """True when the user owns the movie or is an admin; the API decides again on every write."""
        assert self.user_session is not None
        return self.is_admin or movie.get("owner") == self.user_session.sub

    def form_fields(self) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
        """Return the API fields of the posted form, the values to show again, and field problems."""
        shown = {name: self.get_body_argument(name, "").strip() for name in FORM_FIELDS}
        fields: dict[str, Any] = {name: shown[name] for name in ("title", "genre", "releaseDate")}
        fields["imageUrl"] = shown["imageUrl"] or None
        problems: dict[str, str] = {}
        try:
            rating = float(shown["rating"])
            if not math.isfinite(rating):
                raise ValueError
            fields["rating"] = rating
        except ValueError:
            problems["rating"] = "must be a number from 0 to 10"
        return fields, shown, problems

    async def changeable_movie(self, movie_id: str, action: str) -> tuple[dict[str, Any], str]:
        """Return the movie and its ETag; raise `Forbidden` unless the user may change it."""
        movie, etag = await self.movies.get(await self.access_token(), movie_id)
        if not self.may_change(movie):
            raise Forbidden(f"Only the movie's owner or an administrator may {action} it.")
        return movie, etag or ""

    def show_form(self, *, movie: dict[str, Any] | None, values: dict[str, str], problems: dict[str, str],
                  message: str | None, etag: str | None, conflict: bool = False) -> None:
        self.render("movie_form.html", movie=movie, values=values, problems=problems, message=message,
                    etag=etag, conflict=conflict)

    def show_invalid(self, movie: dict[str, Any] | None, values: dict[str, str], problems: dict[str, str],
                     etag: str | None) -> None:
        """Show the form again with 400, the values as typed and each field's problem."""
        self.set_status(400)
        self.show_form(movie=movie, values=values, problems=problems,
                       message="Please correct the marked fields.", etag=etag)

    def posted_etag(self) -> str:
        etag = self.get_body_argument("etag", "")
        if not _ETAG.match(etag):
            raise tornado.web.HTTPError(400, reason="the form lacks the movie's version")
        return etag


class MovieListHandler(MoviePage):
    """`GET /movies?page=&sort=&q=`."""

    @signed_in
    async def get(self) -> None:
        sort = self.get_query_argument("sort", "title")
        if sort not in SORT_CHOICES:
            sort = "title"
        search = self.get_query_argument("q", "").strip()[:MAX_SEARCH_LENGTH]
        page_text = self.get_query_argument("page", "1")
        page = int(page_text) if page_text.isdigit() and 0 < int(page_text) < 100_000 else 1
        result = await self.movies.list(await self.access_token(), page=page, limit=PAGE_SIZE, sort=sort,
                                        title=search or None)
        page_count = max(1, math.ceil(result.total / PAGE_SIZE)) if result.total is not None else None

        def page_link(number: int) -> str:
            query = {"page": str(number), "sort": sort, **({"q": search} if search else {})}
            return "/movies?" + urllib.parse.urlencode(query)

        self.render("movies.html", result=result, page=page, page_count=page_count, page_link=page_link,
                    sort=sort, search=search, sort_choices=SORT_CHOICES,
                    notice=NOTICES.get(self.get_query_argument("done", "")))


class MovieDetailsHandler(MoviePage):
    """`GET /movies/{id}`."""

    @signed_in
    async def get(self, movie_id: str) -> None:
        movie, _ = await self.movies.get(await self.access_token(), movie_id)
        self.render("movie.html", movie=movie, may_change=self.may_change(movie),
                    notice=NOTICES.get(self.get_query_argument("done", "")))


class MovieCreateHandler(MoviePage):
    """`GET /movies/new` shows the form; `POST` creates the movie."""

    @signed_in
    async def get(self) -> None:
        self.show_form(movie=None, values={}, problems={}, message=None, etag=None)

    @signed_in
    async def post(self) -> None:
        fields, shown, problems = self.form_fields()
        if problems:
            self.show_invalid(None, shown, problems, None)
            return
        try:
            movie = await self.movies.create(await self.access_token(), fields)
        except InvalidMovie as exc:
            self.show_invalid(None, shown, exc.fields, None)
            return
        self.redirect(f"/movies/{movie['id']}?done=created")


class MovieEditHandler(MoviePage):
    """`GET /movies/{id}/edit` shows the form with the version read; `POST` saves with If-Match."""

    @signed_in
    async def get(self, movie_id: str) -> None:
        movie, etag = await self.changeable_movie(movie_id, "edit")
        values = {name: "" if movie.get(name) is None else str(movie[name]) for name in FORM_FIELDS}
        self.show_form(movie=movie, values=values, problems={}, message=None, etag=etag)

    @signed_in
    async def post(self, movie_id: str) -> None:
        etag = self.posted_etag()
        fields, shown, problems = self.form_fields()
        token = await self.access_token()
        movie = {"id": movie_id, "title": shown["title"]}
        if problems:
            self.show_invalid(movie, shown, problems, etag)
            return
        try:
            await self.movies.replace(token, movie_id, fields, etag)
        except InvalidMovie as exc:
            self.show_invalid(movie, shown, exc.fields, etag)
            return
        except ApiFailed as exc:
            if exc.status != 412:
                raise
            # Keep what the user typed, so the change can be reapplied to the new version.
            self.set_status(412)
            self.show_form(movie=movie, values=shown, problems={}, message=exc.description,
                           etag=etag, conflict=True)
            return
        self.redirect(f"/movies/{movie_id}?done=saved")


class MovieDeleteHandler(MoviePage):
    """`GET /movies/{id}/delete` shows a confirmation form; `POST` deletes with If-Match."""

    @signed_in
    async def get(self, movie_id: str) -> None:
        movie, etag = await self.changeable_movie(movie_id, "delete")
        self.render("movie_delete.html", movie=movie, etag=etag)

    @signed_in
    async def post(self, movie_id: str) -> None:
        etag = self.posted_etag()
        await self.movies.delete(await self.access_token(), movie_id, etag)
        self.redirect("/movies?done=deleted")
