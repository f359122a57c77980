"""A small cookie-keeping HTTP client for page tests: no redirects followed, forms posted by hand."""

from __future__ import annotations

import html
import http.client
import re
import urllib.parse
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

_XSRF_FIELD = re.compile(r'name="_xsrf" value="([^"]+)"')


@dataclass
class Page:
    status: int
    headers: http.client.HTTPMessage
    body: str

    @property
    def text(self) -> str:
        """The body with HTML character references decoded, for asserting on messages."""
        return html.unescape(self.body)

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")

    def set_cookies(self) -> list[str]:
        return self.headers.get_all("Set-Cookie") or []

    def xsrf(self) -> str:
        match = _XSRF_FIELD.search(self.body)
        assert match, f"no _xsrf field in the page:\n{self.body[:2000]}"
        return match.group(1)

    def error_code(self) -> str | None:
        match = re.search(r'<code id="error-code">([^<]*)</code>', self.body)
        return match.group(1) if match else None


@dataclass
class Browser:
    base_url: str
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> Page:
        parts = urllib.parse.urlsplit(self.base_url)
        connection = http.client.HTTPConnection(parts.netloc, timeout=30)
        all_headers = dict(headers or {})
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            page = Page(response.status, response.headers, response.read().decode("utf-8", "replace"))
        finally:
            connection.close()
        for header in page.set_cookies():
            cookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                if morsel["max-age"] == "0" or morsel["expires"].startswith("Thu, 01 Jan 1970") or \
                        (morsel.value == "" and "expires" in header.lower()):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return page

    def get(self, path: str) -> Page:
        return self.request("GET", path)

    def post(self, path: str, form: dict[str, str]) -> Page:
        """POST `form` with the `_xsrf` token of the page at `path` (fetched first)."""
        token = self.get(path).xsrf()
        return self.request("POST", path, {"_xsrf": token, **form})
