#!/usr/bin/env python3
"""List, search and show movies through the gateway as a machine-to-machine client.

The starting point for a service that calls the movies API with its own
credentials (the OAuth 2 `client_credentials` grant, RFC 6749 section 4.4):

    python scripts/movies_cli.py list --genre Drama
    python scripts/movies_cli.py search matrix --json
    python scripts/movies_cli.py show 65f1c0ffee0123456789abcd

It reads the token endpoint from the issuer's discovery document, authenticates
with HTTP Basic (`client_secret_basic`), and reuses the access token until
`REFRESH_MARGIN` seconds before it expires. `--token-cache FILE` keeps the token
between runs in a file only the current user can read.

Settings come from options or the environment: `ISSUER` (default
http://localhost:5005), `MOVIES_GATEWAY` (default http://localhost:5010),
`MOVIES_CLIENT_ID` (default movieClient) and `MOVIES_CLIENT_SECRET` (default
"secret", the development secret in conf/clients.toml).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Seconds before `exp` at which a cached token is replaced, so a request never
# reaches the API with a token that expires on the way.
REFRESH_MARGIN = 60
TIMEOUT = 10.0
COLUMNS = (("id", "ID"), ("title", "TITLE"), ("genre", "GENRE"), ("rating", "RATING"),
           ("releaseDate", "RELEASED"), ("owner", "OWNER"))


class CliError(Exception):
    """A failure to report on one line, without a traceback."""


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise CliError(f"the response is not valid JSON: {self.body[:200]!r}") from None


def http(method: str, url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> HttpResult:
    """Send one request and return the result, also for 4xx and 5xx statuses."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return HttpResult(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as exc:
        return HttpResult(exc.code, dict(exc.headers), exc.read())
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"{method} {url} failed: {reason}") from None


def describe_error(result: HttpResult) -> str:
    """Return `error: description` from a JSON error body, else the status."""
    try:
        body = json.loads(result.body)
        return f"{result.status} {body.get('error', '')}: {body.get('error_description', '')}".rstrip(": ")
    except (ValueError, AttributeError):
        return f"{result.status}"


class TokenSource:
    """Access tokens from the client_credentials grant, reused until shortly before `exp`.

    `cache_path`, when set, keeps the token between runs (mode 0600). The client
    secret is never written anywhere.
    """

    def __init__(self, issuer: str, client_id: str, client_secret: str, scope: str,
                 cache_path: Path | None = None, clock: Callable[[], float] = time.time):
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.cache_path = cache_path
        self.clock = clock
        self.requests = 0
        self._token: str | None = None
        self._expires_at = 0.0
        self._token_endpoint: str | None = None
        self._load_cache()

    def token(self) -> str:
        """Return a token that is valid for at least `REFRESH_MARGIN` more seconds."""
        if self._token is None or self.clock() >= self._expires_at - REFRESH_MARGIN:
            self._fetch()
        return self._token

    def invalidate(self) -> None:
        """Forget the token, after the API rejected it (revoked, or keys rotated)."""
        self._token = None
        self._expires_at = 0.0

    def _endpoint(self) -> str:
        if self._token_endpoint is None:
            result = http("GET", f"{self.issuer}/.well-known/openid-configuration")
            if result.status != 200:
                raise CliError(f"discovery at {self.issuer} failed: {describe_error(result)}")
            document = result.json()
            if document.get("issuer") != self.issuer or not document.get("token_endpoint"):
                raise CliError(f"discovery at {self.issuer} names issuer {document.get('issuer')!r}: "
                               f"set ISSUER to the provider's public URL")
            self._token_endpoint = document["token_endpoint"]
        return self._token_endpoint

    def _fetch(self) -> None:
        # RFC 6749 section 2.3.1: id and secret are form-urlencoded before Base64.
        pair = f"{urllib.parse.quote_plus(self.client_id)}:{urllib.parse.quote_plus(self.client_secret)}"
        headers = {
            "Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii"),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": self.scope}).encode()
        started = self.clock()
        result = http("POST", self._endpoint(), headers, form)
        self.requests += 1
        if result.status != 200:
            raise CliError(f"token request for client {self.client_id} failed: {describe_error(result)}")
        body = result.json()
        if body.get("token_type", "").lower() != "bearer" or not body.get("access_token"):
            raise CliError("the token endpoint returned no bearer access token")
        self._token = body["access_token"]
        # Counted from before the request, so network time only shortens the reuse.
        self._expires_at = started + float(body.get("expires_in", 0))
        self._save_cache()

    def _cache_key(self) -> str:
        return f"{self.issuer} {self.client_id} {self.scope}"

    def _load_cache(self) -> None:
        if self.cache_path is None or not self.cache_path.exists():
            return
        try:
            cached = json.loads(self.cache_path.read_text())
        except (OSError, ValueError):
            return
        if cached.get("key") == self._cache_key():
            self._token = cached.get("access_token")
            self._expires_at = float(cached.get("expires_at", 0))

    def _save_cache(self) -> None:
        if self.cache_path is None:
            return
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.cache_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"key": self._cache_key(), "access_token": self._token,
                       "expires_at": self._expires_at}, handle)


class MoviesClient:
    """Calls the movies routes of the gateway with tokens from a `TokenSource`."""

    def __init__(self, gateway: str, tokens: TokenSource):
        self.gateway = gateway.rstrip("/")
        self.tokens = tokens

    def get(self, path: str, query: dict[str, str] | None = None) -> Any:
        url = self.gateway + path + ("?" + urllib.parse.urlencode(query) if query else "")
        result = http("GET", url, {"Authorization": f"Bearer {self.tokens.token()}",
                                   "Accept": "application/json"})
        if result.status == 401:
            # The token may have been revoked or signed with a retired key: try once more.
            self.tokens.invalidate()
            result = http("GET", url, {"Authorization": f"Bearer {self.tokens.token()}",
                                       "Accept": "application/json"})
        if result.status != 200:
            raise CliError(f"GET {path} failed: {describe_error(result)}")
        return result.json()

    def list(self, genre: str | None, owner: str | None, sort: str, limit: int) -> list[dict]:
        query = {"sort": sort, "limit": str(limit)}
        if genre:
            query["genre"] = genre
        if owner:
            query["owner"] = owner
        return self.get("/movies", query)

    def search(self, text: str, limit: int) -> list[dict]:
        return self.get("/movies", {"title": text, "limit": str(limit)})

    def show(self, movie_id: str) -> dict:
        return self.get("/movies/" + urllib.parse.quote(movie_id, safe=""))


def format_table(movies: list[dict]) -> str:
    """Format movies as aligned columns with a header line."""
    rows = [[header for _, header in COLUMNS]]
    for movie in movies:
        rows.append([_cell(movie.get(field)) for field, _ in COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    if not movies:
        lines.append("(no movies)")
    return "\n".join(lines)


def format_movie(movie: dict) -> str:
    """Format one movie as `field: value` lines."""
    width = max(len(header) for _, header in COLUMNS)
    lines = [f"{header.ljust(width)}  {_cell(movie.get(field))}" for field, header in COLUMNS]
    lines.append(f"{'IMAGE'.ljust(width)}  {_cell(movie.get('imageUrl'))}")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value)
    return text if len(text) <= 48 else text[:47] + "…"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="List, search and show movies through the API gateway.")
    parser.add_argument("--gateway", default=os.environ.get("MOVIES_GATEWAY", "http://localhost:5010"),
                        help="gateway base URL (env MOVIES_GATEWAY)")
    parser.add_argument("--issuer", default=os.environ.get("ISSUER", "http://localhost:5005"),
                        help="identity provider URL (env ISSUER)")
    parser.add_argument("--client-id", default=os.environ.get("MOVIES_CLIENT_ID", "movieClient"),
                        help="OAuth 2 client id (env MOVIES_CLIENT_ID)")
    parser.add_argument("--scope", default="movieAPI", help="scope to request (default movieAPI)")
    parser.add_argument("--token-cache", type=Path, default=None,
                        help="file that keeps the access token between runs (created with mode 0600)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list movies")
    listing.add_argument("--genre", help="only this genre")
    listing.add_argument("--owner", help="only movies of this owner")
    listing.add_argument("--sort", default="title",
                         help="title, genre, rating, releaseDate or id; prefix - for descending")
    listing.add_argument("--limit", type=int, default=20, help="number of movies (default 20)")
    search = commands.add_parser("search", help="find movies whose title contains TEXT")
    search.add_argument("text")
    search.add_argument("--limit", type=int, default=20, help="number of movies (default 20)")
    show = commands.add_parser("show", help="show one movie")
    show.add_argument("id")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    secret = os.environ.get("MOVIES_CLIENT_SECRET", "secret")
    tokens = TokenSource(args.issuer, args.client_id, secret, args.scope, args.token_cache)
    client = MoviesClient(args.gateway, tokens)
    try:
        if args.command == "list":
            result = client.list(args.genre, args.owner, args.sort, args.limit)
        elif args.command == "search":
            result = client.search(args.text, args.limit)
        else:
            result = client.show(args.id)
    except CliError as exc:
        print(f"movies_cli: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    elif args.command == "show":
        print(format_movie(result))
    else:
        print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
