"""Pages of webclient_srv against real movies_srv and gateway_srv processes.

Sessions are written straight into Redis with tokens signed by the test issuer,
which the gateway and the API trust. test_callback.py and test_browser.py cover
the browser sign-in itself.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from pathlib import Path

import pytest
from pymongo import MongoClient

from servicekit.embedded import free_port
from tests.support.processes import ServiceProcess

from .browser import Browser, Page
from .conftest import (
    ALICE,
    BOB,
    MOVIES_DATABASE,
    SESSION_COOKIE,
    start_webclient,
    start_webclient_without_redis,
)

MOVIE = {"title": "The Matrix", "genre": "Science Fiction", "rating": "8.7", "releaseDate": "1999-03-31",
         "imageUrl": "https://image.example/matrix.jpg"}


@pytest.fixture
def no_movies(mongo_proc):
    client = MongoClient(mongo_proc.url, serverSelectionTimeoutMS=5000)
    client[MOVIES_DATABASE]["movies"].delete_many({})
    yield
    client.close()


def browser_for(stack, sub: str | None = None, roles: list[str] | None = None, **session) -> Browser:
    browser = Browser(stack.webclient.url)
    if sub is not None:
        browser.cookies[SESSION_COOKIE] = stack.sign_in(sub, roles or [], **session)
    return browser


def create_movie(browser: Browser, **fields: str) -> str:
    page = browser.post("/movies/new", {**MOVIE, **fields})
    assert page.status == 302, page.body
    match = re.fullmatch(r"/movies/([0-9a-f]{24})\?done=created", page.location or "")
    assert match, page.location
    return match.group(1)


def listed_titles(page: Page) -> list[str]:
    return [html.unescape(title) for title in re.findall(r'<a href="/movies/[0-9a-f]{24}">([^<]*)</a>', page.body)]


def hidden_etag(page: Page) -> str:
    match = re.search(r'name="etag" value="([^"]*)"', page.body)
    assert match, page.body
    return html.unescape(match.group(1))


def test_home_sends_security_headers(page_stack):
    page = browser_for(page_stack).get("/")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert page.headers["Content-Security-Policy"] == (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: http:; "
        f"form-action 'self' {page_stack.issuer.url}; frame-ancestors 'none'; base-uri 'none'")
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert "<script" not in page.body
    assert 'href="/signin"' in page.body


def test_protected_page_starts_sign_in(page_stack):
    browser = browser_for(page_stack)
    page = browser.get("/movies?sort=-rating")
    assert page.status == 302
    location = urllib.parse.urlsplit(page.location)
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{page_stack.issuer.url}/connect/authorize"
    query = dict(urllib.parse.parse_qsl(location.query))
    assert query["response_type"] == "code"
    assert query["client_id"] == "movies_mvc_client"
    assert query["redirect_uri"] == f"{page_stack.public_url}/signin-oidc"
    assert query["scope"] == "openid profile email address roles movieAPI offline_access"
    assert query["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", query["code_challenge"])
    assert len(query["state"]) >= 43
    assert len(query["nonce"]) >= 43
    assert query["state"] != query["nonce"]
    cookie = next(header for header in page.set_cookies() if header.startswith("webclient_signin="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_each_sign_in_gets_its_own_state(page_stack):
    browser = browser_for(page_stack)
    first = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(browser.get("/movies").location).query))
    second = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(browser.get("/claims").location).query))
    assert first["state"] != second["state"]
    assert first["nonce"] != second["nonce"]
    assert first["code_challenge"] != second["code_challenge"]


def test_navigation_shows_admin_link_to_admins_only(page_stack):
    bob = browser_for(page_stack, BOB, ["admin"]).get("/")
    alice = browser_for(page_stack, ALICE, ["user"]).get("/")
    assert 'id="admin-link"' in bob.body
    assert "Bob Smith" in bob.body
    assert 'id="admin-link"' not in alice.body
    assert "Alice Smith" in alice.body


def test_admin_page_is_403_for_users(page_stack):
    page = browser_for(page_stack, ALICE, ["user"]).get("/admin")
    assert page.status == 403
    assert page.error_code() == "forbidden"
    assert "administrators only" in page.body


def test_claims_page_shows_claims_not_tokens(page_stack):
    browser = browser_for(page_stack, BOB, ["admin"])
    page = browser.get("/claims")
    assert page.status == 200
    assert '<th scope="row">sub</th><td>88421113</td>' in page.body
    assert '<th scope="row">aud</th><td>movieAPI</td>' in page.body
    assert '<th scope="row">aud</th><td>movies_mvc_client</td>' in page.body
    assert '<th scope="row">role</th><td>admin</td>' in page.body
    # No JWT, whole or in part, reaches the browser.
    assert "eyJ" not in page.body


def test_create_show_edit_delete(page_stack, no_movies):
    bob = browser_for(page_stack, BOB, ["admin"])
    movie_id = create_movie(bob)

    shown = bob.get(f"/movies/{movie_id}?done=created")
    assert shown.status == 200
    assert '<h1 id="movie-title">The Matrix</h1>' in shown.body
    assert '<img src="https://image.example/matrix.jpg" alt="Poster of The Matrix"' in shown.body
    assert "The movie was added." in shown.body

    form = bob.get(f"/movies/{movie_id}/edit")
    assert form.status == 200
    assert hidden_etag(form) == '"1"'
    assert 'value="The Matrix"' in form.body
    saved = bob.request("POST", f"/movies/{movie_id}/edit",
                        {"_xsrf": form.xsrf(), "etag": '"1"', **MOVIE, "rating": "9.5"})
    assert saved.status == 302
    assert saved.location == f"/movies/{movie_id}?done=saved"
    assert '<dd id="movie-rating">9.5 / 10</dd>' in bob.get(f"/movies/{movie_id}").body

    confirm = bob.get(f"/movies/{movie_id}/delete")
    assert confirm.status == 200
    assert hidden_etag(confirm) == '"2"'
    deleted = bob.request("POST", f"/movies/{movie_id}/delete", {"_xsrf": confirm.xsrf(), "etag": '"2"'})
    assert deleted.status == 302
    assert deleted.location == "/movies?done=deleted"
    gone = bob.get(f"/movies/{movie_id}")
    assert gone.status == 404
    assert gone.error_code() == "not_found"


def test_stale_edit_shows_conflict_and_keeps_input(page_stack, no_movies):
    bob = browser_for(page_stack, BOB, ["admin"])
    movie_id = create_movie(bob)
    form = bob.get(f"/movies/{movie_id}/edit")
    first = bob.request("POST", f"/movies/{movie_id}/edit",
                        {"_xsrf": form.xsrf(), "etag": hidden_etag(form), **MOVIE, "genre": "Action"})
    assert first.status == 302

    # The same form, sent again with the version it was read at.
    second = bob.request("POST", f"/movies/{movie_id}/edit",
                         {"_xsrf": form.xsrf(), "etag": hidden_etag(form), **MOVIE, "genre": "Drama"})
    assert second.status == 412
    assert "Someone else changed this movie after you opened it." in second.body
    assert 'value="Drama"' in second.body
    assert '<dd id="movie-genre">Action</dd>' in bob.get(f"/movies/{movie_id}").body


def test_user_cannot_edit_another_users_movie(page_stack, no_movies):
    bob = browser_for(page_stack, BOB, ["admin"])
    movie_id = create_movie(bob)
    etag = hidden_etag(bob.get(f"/movies/{movie_id}/edit"))
    alice = browser_for(page_stack, ALICE, ["user"])

    details = alice.get(f"/movies/{movie_id}")
    assert details.status == 200
    assert f"/movies/{movie_id}/edit" not in details.body
    # The owner is shown by the name from Bob's token, not by his subject id.
    assert "<dt>Owner</dt><dd>Bob Smith</dd>" in details.body
    assert "<dt>Owner</dt><dd>you</dd>" in bob.get(f"/movies/{movie_id}").body

    form = alice.get(f"/movies/{movie_id}/edit")
    assert form.status == 403
    assert form.error_code() == "forbidden"

    # Posting anyway reaches the API, which refuses it.
    posted = alice.request("POST", f"/movies/{movie_id}/edit",
                           {"_xsrf": details.xsrf(), "etag": etag, **MOVIE, "title": "Mine now"})
    assert posted.status == 403
    assert "Only the movie's owner or an administrator may change it." in posted.text
    assert '<h1 id="movie-title">The Matrix</h1>' in bob.get(f"/movies/{movie_id}").body


def test_invalid_fields_are_shown_in_the_form(page_stack, no_movies):
    bob = browser_for(page_stack, BOB, ["admin"])
    bad_rating = bob.post("/movies/new", {**MOVIE, "rating": "ten"})
    assert bad_rating.status == 400
    assert "Rating (0 to 10) must be a number from 0 to 10" in bad_rating.body
    too_high = bob.post("/movies/new", {**MOVIE, "rating": "11"})
    assert too_high.status == 400
    assert 'id="rating-problem"' in too_high.body
    bad_date = bob.post("/movies/new", {**MOVIE, "releaseDate": "yesterday"})
    assert bad_date.status == 400
    assert 'id="releaseDate-problem"' in bad_date.body


def test_list_pages_sorts_and_searches(page_stack, no_movies):
    bob = browser_for(page_stack, BOB, ["admin"])
    for number in range(12):
        create_movie(bob, title=f"Film {number:02d}", rating=str(number * 0.5), imageUrl="")

    first = bob.get("/movies")
    assert first.status == 200
    assert len(listed_titles(first)) == 10
    assert "Page 1 of 2" in first.body
    assert 'rel="next" href="/movies?page=2&amp;sort=title"' in first.body
    second = bob.get("/movies?page=2&sort=title")
    assert listed_titles(second) == ["Film 10", "Film 11"]

    by_rating = bob.get("/movies?sort=-rating")
    assert listed_titles(by_rating)[0] == "Film 11"
    found = bob.get("/movies?q=film+07")
    assert listed_titles(found) == ["Film 07"]


def test_forms_without_csrf_token_are_rejected(page_stack, no_movies):
    bob = browser_for(page_stack, BOB, ["admin"])
    bob.get("/movies/new")
    missing = bob.request("POST", "/movies/new", MOVIE)
    assert missing.status == 403
    assert "reload the page and submit it again" in missing.body
    forged = bob.request("POST", "/movies/new", {"_xsrf": "2|00000000|00000000000000000000000000000000|1", **MOVIE})
    assert forged.status == 403
    signout = bob.request("POST", "/signout", {})
    assert signout.status == 403
    assert listed_titles(bob.get("/movies")) == []


def test_expired_session_signs_in_again_and_keeps_the_page(page_stack):
    browser = browser_for(page_stack, BOB, ["admin"], lifetime=-10)
    page = browser.get("/movies?sort=genre")
    assert page.status == 302
    assert page.location.startswith(f"{page_stack.issuer.url}/connect/authorize?")
    assert SESSION_COOKIE not in browser.cookies
    pending = page_stack.pending_return_urls(browser.cookies["webclient_signin"])
    assert pending == ["/movies?sort=genre"]


def test_rejected_access_token_signs_in_again(page_stack):
    browser = browser_for(page_stack, BOB, ["admin"])
    page_stack.replace_access_token(browser.cookies[SESSION_COOKIE], "not-a-valid-token")
    page = browser.get("/movies")
    assert page.status == 302
    assert page.location.startswith(f"{page_stack.issuer.url}/connect/authorize?")
    assert SESSION_COOKIE not in browser.cookies


def test_sign_out_ends_session_and_posts_to_provider(page_stack):
    browser = browser_for(page_stack, BOB, ["admin"])
    cookie = browser.cookies[SESSION_COOKIE]
    page = browser.post("/signout", {})
    assert page.status == 200
    assert f'<form method="post" action="{page_stack.issuer.url}/connect/endsession" id="end-session">' in page.body
    assert '<input type="hidden" name="id_token_hint" value="eyJ' in page.body
    assert (f'<input type="hidden" name="post_logout_redirect_uri" '
            f'value="{page_stack.public_url}/signout-callback-oidc">') in page.body
    assert SESSION_COOKIE not in browser.cookies
    assert not page_stack.session_exists(cookie)

    state = re.search(r'name="state" value="([^"]+)"', page.body).group(1)
    back = browser.get(f"/signout-callback-oidc?state={state}")
    assert back.status == 302
    assert back.location == "/?signed_out=1"
    assert "You are signed out." in browser.get("/?signed_out=1").body


def test_sign_out_callback_with_other_state_goes_home(page_stack):
    browser = browser_for(page_stack, BOB, ["admin"])
    browser.post("/signout", {})
    back = browser.get("/signout-callback-oidc?state=forged")
    assert back.status == 302
    assert back.location == "/"


def test_unknown_path_is_an_html_404(page_stack):
    page = browser_for(page_stack).get("/nothing/here")
    assert page.status == 404
    assert page.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert page.error_code() == "not_found"


def test_sign_out_by_redirect_sends_no_token(page_stack, tmp_path):
    env = {"REDIS_URL": page_stack.redis_url, "ISSUER": page_stack.issuer.url, "LOG_LEVEL": "info",
           "WEBCLIENT__GATEWAY__URL": page_stack.gateway.url, "WEBCLIENT__OIDC__END_SESSION_METHOD": "get"}
    webclient = start_webclient(env, tmp_path / "webclient.log")
    try:
        browser = Browser(webclient.url)
        browser.cookies[SESSION_COOKIE] = page_stack.sign_in(BOB, ["admin"])
        page = browser.post("/signout", {})
        assert page.status == 302
        location = urllib.parse.urlsplit(page.location)
        assert f"{location.scheme}://{location.netloc}{location.path}" == f"{page_stack.issuer.url}/connect/endsession"
        query = dict(urllib.parse.parse_qsl(location.query))
        assert sorted(query) == ["client_id", "post_logout_redirect_uri", "state"]
        assert query["post_logout_redirect_uri"] == f"http://localhost:{webclient.port}/signout-callback-oidc"
        assert SESSION_COOKIE not in browser.cookies
    finally:
        webclient.stop()


def test_redis_down_gives_503_page(page_stack, tmp_path):
    webclient = start_webclient_without_redis(page_stack, tmp_path / "webclient.log")
    try:
        browser = Browser(webclient.url)
        browser.cookies[SESSION_COOKIE] = "a-session-that-cannot-be-read"
        page = browser.get("/movies")
        assert page.status == 503
        assert page.headers["Retry-After"] == "5"
        assert page.error_code() == "temporarily_unavailable"
        assert "The session store is unavailable. Try again in a moment." in page.text
        assert "Traceback" not in page.body
    finally:
        webclient.stop()


def test_gateway_down_gives_503_page(page_stack, tmp_path):
    env = {"REDIS_URL": page_stack.redis_url, "ISSUER": page_stack.issuer.url,
           "WEBCLIENT__GATEWAY__URL": f"http://127.0.0.1:{free_port()}", "WEBCLIENT__GATEWAY__TIMEOUT": "2"}
    webclient = start_webclient(env, tmp_path / "webclient.log")
    try:
        browser = Browser(webclient.url)
        browser.cookies[SESSION_COOKIE] = page_stack.sign_in(BOB, ["admin"])
        page = browser.get("/movies")
        assert page.status == 503
        assert page.error_code() == "api_error"
        assert "The movies service is unavailable right now. Try again in a moment." in page.text
        # The session survives an outage of the API.
        assert page_stack.session_exists(browser.cookies[SESSION_COOKIE])
    finally:
        webclient.stop()


def test_gateway_rate_limit_gives_429_page(page_stack, tmp_path):
    routes = (Path(__file__).resolve().parents[2] / "conf" / "routes.toml").read_text()
    routes_file = tmp_path / "routes.toml"
    routes_file.write_text(routes.replace("per_client = 600", "per_client = 2"))
    base = {"REDIS_URL": page_stack.redis_url, "ISSUER": page_stack.issuer.url, "LOG_LEVEL": "info"}
    gateway = ServiceProcess("gateway_srv", {**base, "GATEWAY_MOVIES_URL": page_stack.movies.url,
                                             "GATEWAY__ROUTES__FILE": str(routes_file),
                                             "GATEWAY__REDIS__KEY_PREFIX": f"gw-{tmp_path.name}:"},
                             tmp_path / "gateway.log").start()
    webclient = start_webclient({**base, "WEBCLIENT__GATEWAY__URL": gateway.url}, tmp_path / "webclient.log")
    try:
        browser = Browser(webclient.url)
        browser.cookies[SESSION_COOKIE] = page_stack.sign_in(BOB, ["admin"])
        statuses = [browser.get("/movies").status for _ in range(3)]
        assert statuses == [200, 200, 429]
        page = browser.get("/movies")
        assert page.status == 429
        assert page.error_code() == "api_error"
        assert "Too many requests in a short time. Wait a minute, then try again." in page.text
    finally:
        webclient.stop()
        gateway.stop()
