"""The whole stack in Debian's headless Chromium, driven by Playwright.

identity_srv, movies_srv, gateway_srv and webclient_srv run as real processes on
free ports of localhost. The provider reads a copy of the clients file whose
redirect URIs name the test's webclient port, and gives the browser client
access tokens of ACCESS_TOKEN_LIFETIME seconds. The webclient refreshes a token
REFRESH_MARGIN seconds before it expires, so after a few seconds every page
load needs a refresh.

Screenshots of each page go to test-output/webclient/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio

from servicekit.embedded import free_port
from tests.support.processes import ROOT, ServiceProcess
from webclient_srv.sessions import SessionStore

from .conftest import start_webclient

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "test-output" / "webclient"

ACCESS_TOKEN_LIFETIME = 30
REFRESH_MARGIN = 25
# Seconds after sign-in when the access token is within the refresh margin.
REFRESH_DUE_AFTER = ACCESS_TOKEN_LIFETIME - REFRESH_MARGIN + 1

IDENTITY_DATABASE = "identity_webclient_e2e"
MOVIES_DATABASE = "movies_webclient_e2e"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make system-deps)"),
]


@dataclass
class FullStack:
    identity: ServiceProcess
    movies: ServiceProcess
    gateway: ServiceProcess
    webclient: ServiceProcess
    redis_url: str

    @property
    def url(self) -> str:
        return f"http://localhost:{self.webclient.port}"

    @property
    def issuer(self) -> str:
        return f"http://localhost:{self.identity.port}"


def write_clients_file(folder: Path, webclient_port: int) -> Path:
    """Copy conf/clients.toml with the test's redirect URIs and a short browser token lifetime."""
    text = (ROOT / "conf" / "clients.toml").read_text()
    text = text.replace("http://localhost:5002/", f"http://localhost:{webclient_port}/")
    browser_client = text.index('client_id = "movies_mvc_client"')
    head, tail = text[:browser_client], text[browser_client:]
    tail = tail.replace("access_token_lifetime = 3600", f"access_token_lifetime = {ACCESS_TOKEN_LIFETIME}", 1)
    path = folder / "clients.toml"
    path.write_text(head + tail)
    return path


def run_script(script: str, env: dict[str, str], *arguments: str) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *arguments], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def full_stack(redis_proc, mongo_proc, tmp_path_factory):
    import os

    folder = tmp_path_factory.mktemp("full_stack")
    webclient_port = free_port()
    identity_port = free_port()
    issuer = f"http://localhost:{identity_port}"
    base = {**os.environ, "REDIS_URL": redis_proc.url, "MONGO_URL": mongo_proc.url, "ISSUER": issuer,
            "LOG_LEVEL": "info"}
    identity_env = {**base, "IDENTITY__MONGO__DATABASE": IDENTITY_DATABASE,
                    "IDENTITY__CLIENTS__FILE": str(write_clients_file(folder, webclient_port))}
    movies_env = {**base, "MOVIES__MONGO__DATABASE": MOVIES_DATABASE}
    run_script("seed_users.py", identity_env)
    run_script("seed_movies.py", movies_env)

    started: list[ServiceProcess] = []
    try:
        identity = ServiceProcess("identity_srv", identity_env, folder / "identity.log", port=identity_port).start()
        started.append(identity)
        movies = ServiceProcess("movies_srv", movies_env, folder / "movies.log").start()
        started.append(movies)
        gateway = ServiceProcess("gateway_srv", {**base, "GATEWAY_MOVIES_URL": movies.url},
                                 folder / "gateway.log").start()
        started.append(gateway)
        webclient = start_webclient({**base, "WEBCLIENT__GATEWAY__URL": f"http://localhost:{gateway.port}",
                                     "WEBCLIENT__SESSION__REFRESH_MARGIN": str(REFRESH_MARGIN)},
                                    folder / "webclient.log", port=webclient_port)
        started.append(webclient)
        yield FullStack(identity, movies, gateway, webclient, redis_proc.url)
    finally:
        for service in reversed(started):
            service.stop()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium, full_stack, tmp_path):
    """Open pages in fresh browser contexts (no shared cookies); all are closed after the test."""
    contexts = []

    def open_page():
        context = chromium.new_context(base_url=full_stack.url, viewport={"width": 1100, "height": 800})
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page, full_stack: FullStack, username: str, shot_prefix: str | None = None) -> None:
    """Sign in from the home page through the provider's login form."""
    page.goto("/")
    page.click("text=Sign in")
    page.wait_for_url(re.compile(re.escape(full_stack.issuer) + ".*"))
    page.fill("#username", username)
    page.fill("#password", username)
    if shot_prefix:
        screenshot(page, f"{shot_prefix}-provider-login")
    page.click("button[value=login]")
    page.wait_for_url(f"{full_stack.url}/")


def claim(page, table: str, name: str) -> str:
    return page.inner_text(f'#{table} tr:has(th:text-is("{name}")) td')


def test_bob_manages_movies_and_signs_out(full_stack, new_page):
    page = new_page()
    page.goto("/")
    screenshot(page, "bob-01-home-anonymous")
    sign_in(page, full_stack, "bob", "bob-02")
    assert "Signed in as Bob Smith" in page.inner_text("header")
    assert page.is_visible("#admin-link")
    screenshot(page, "bob-03-home-signed-in")

    page.click("text=Browse the movies")
    page.wait_for_url(f"{full_stack.url}/movies")
    assert page.locator("table.movies tbody tr").count() == 10
    screenshot(page, "bob-04-movies")
    page.fill("#q", "godfather")
    page.select_option("#sort", "-releaseDate")
    page.click("button:text-is('Apply')")
    titles = page.locator("table.movies tbody td:first-child").all_inner_texts()
    assert titles == ["The Godfather Part II", "The Godfather"]
    screenshot(page, "bob-05-search")

    page.click("text=Add a movie")
    page.fill("#title", "Playwright: The Movie")
    page.fill("#genre", "Documentary")
    page.fill("#rating", "7.5")
    page.fill("#releaseDate", "2024-05-01")
    page.fill("#imageUrl", "https://image.tmdb.org/t/p/w500/f89U3ADr1oiB1s9GkdPOEpXUk5H.jpg")
    page.click("button:text-is('Add the movie')")
    page.wait_for_url(re.compile(r".*/movies/[0-9a-f]{24}\?done=created"))
    assert page.inner_text("#movie-title") == "Playwright: The Movie"
    assert page.inner_text("#movie-rating") == "7.5 / 10"
    screenshot(page, "bob-06-created")

    page.click("text=Edit")
    page.fill("#rating", "8.5")
    screenshot(page, "bob-07-edit")
    page.click("button:text-is('Save changes')")
    page.wait_for_url(re.compile(r".*/movies/[0-9a-f]{24}\?done=saved"))
    assert page.inner_text("#movie-rating") == "8.5 / 10"
    screenshot(page, "bob-08-saved")

    page.click("text=Delete")
    screenshot(page, "bob-09-delete-confirm")
    page.click("button:text-is('Delete the movie')")
    page.wait_for_url(f"{full_stack.url}/movies?done=deleted")
    assert "The movie was deleted." in page.inner_text("main")
    screenshot(page, "bob-10-deleted")

    page.goto("/claims")
    assert claim(page, "id-token-claims", "sub") == "88421113"
    assert claim(page, "id-token-claims", "role") == "admin"
    assert claim(page, "access-token-claims", "aud") == "movieAPI"
    assert "eyJ" not in page.content()
    screenshot(page, "bob-11-claims")

    page.click("#admin-link")
    assert claim(page, "userinfo-claims", "email") == "BobSmith@email.com"
    screenshot(page, "bob-12-admin")

    page.click("button:text-is('Sign out')")
    page.wait_for_url(f"{full_stack.url}/?signed_out=1")
    assert "You are signed out." in page.inner_text("main")
    assert page.is_visible("a:text-is('Sign in')")
    screenshot(page, "bob-13-signed-out")

    # The provider's session ended too: a protected page now shows its login form again.
    page.goto("/movies")
    page.wait_for_url(re.compile(re.escape(full_stack.issuer) + ".*"))
    assert page.is_visible("#password")


def test_alice_is_refused_admin_and_bobs_movie(full_stack, new_page):
    page = new_page()
    sign_in(page, full_stack, "alice")
    assert "Signed in as Alice Smith" in page.inner_text("header")
    assert not page.is_visible("#admin-link")

    response = page.goto("/admin")
    assert response.status == 403
    assert page.inner_text("h1") == "Access denied"
    screenshot(page, "alice-01-admin-403")

    page.goto("/movies?q=The+Godfather&sort=releaseDate")
    page.click("text=The Godfather")
    assert page.inner_text("#movie-title") == "The Godfather"
    assert not page.is_visible("a:text-is('Edit')")
    movie_path = page.url.removeprefix(full_stack.url)
    response = page.goto(f"{movie_path}/edit")
    assert response.status == 403
    assert "Only the movie's owner or an administrator may edit it." in page.inner_text("main")
    screenshot(page, "alice-02-edit-403")

    # Posting the edit form anyway, with her own CSRF token, reaches the API, which rejects it.
    xsrf = page.get_attribute("input[name=_xsrf]", "value")
    posted = page.request.post(f"{full_stack.url}{movie_path}/edit", max_redirects=0, form={
        "_xsrf": xsrf, "etag": '"1"', "title": "Mine now", "genre": "Crime", "rating": "1",
        "releaseDate": "1972-03-24", "imageUrl": ""})
    assert posted.status == 403
    assert "Only the movie's owner or an administrator may change it." in html.unescape(posted.text())
    page.goto(movie_path)
    assert page.inner_text("#movie-title") == "The Godfather"


def session_cookie(page) -> str:
    return next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "webclient_session")


def page_status(url: str, cookie: str) -> int:
    """GET `url` with the session cookie, without following redirects; return the status."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers={"Cookie": f"webclient_session={cookie}"})
    try:
        with opener.open(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_expiring_access_token_is_refreshed_unnoticed(full_stack, new_page):
    page = new_page()
    sign_in(page, full_stack, "bob")
    page.goto("/claims")
    first_jti = claim(page, "access-token-claims", "jti")

    time.sleep(REFRESH_DUE_AFTER)
    response = page.goto("/movies")
    assert response.status == 200
    assert page.url == f"{full_stack.url}/movies"
    page.goto("/claims")
    second_jti = claim(page, "access-token-claims", "jti")
    assert second_jti != first_jti
    screenshot(page, "refresh-01-claims-after-refresh")

    # Parallel requests of one session: only one may spend the rotated refresh
    # token, or the provider would revoke the whole family and sign the user out.
    time.sleep(REFRESH_DUE_AFTER)
    cookie = session_cookie(page)
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda _: page_status(f"{full_stack.url}/claims", cookie), range(6)))
    assert statuses == [200] * 6
    time.sleep(REFRESH_DUE_AFTER)
    assert page_status(f"{full_stack.url}/claims", cookie) == 200
    page.goto("/claims")
    assert claim(page, "access-token-claims", "jti") not in (first_jti, second_jti)

    log = full_stack.webclient.log()
    assert "INFO webclient_srv.audit access token refreshed sub=88421113" in log
    assert "refresh rejected" not in log
    assert "eyJ" not in log


def spoil_refresh_token(redis_url: str, cookie: str) -> None:
    """Make the session's access token due for refresh and its refresh token one the provider never issued."""

    async def spoil() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            store = SessionStore(client, "web:", 3600)
            session = await store.get(cookie)
            session.refresh_token = "not-a-refresh-token"
            session.access_token_expires_at = time.time() - 1
            assert await store.save(cookie, session)
        finally:
            await client.aclose()

    # Playwright's sync API runs an event loop in this thread, so asyncio runs in another.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, spoil()).result()


def test_failed_refresh_returns_to_the_page(full_stack, new_page):
    page = new_page()
    sign_in(page, full_stack, "bob")
    spoil_refresh_token(full_stack.redis_url, session_cookie(page))

    # The provider still has bob's session, so the new sign-in needs no password
    # and the browser lands on the page it requested.
    response = page.goto("/movies?sort=-rating")
    assert response.status == 200
    assert page.url == f"{full_stack.url}/movies?sort=-rating"
    assert page.locator("table.movies tbody td:first-child").first.inner_text() == "The Shawshank Redemption"
    screenshot(page, "refresh-02-after-failed-refresh")
    assert "WARNING webclient_srv.audit refresh rejected sub=88421113" in full_stack.webclient.log()


def test_provider_logout_ends_web_session(full_stack, new_page):
    page = new_page()
    sign_in(page, full_stack, "alice")
    cookie = session_cookie(page)
    assert page_status(f"{full_stack.url}/claims", cookie) == 200

    # Sign out at the provider itself, not through the web client: only the
    # back-channel logout token can tell the web client that the session ended.
    page.goto(f"{full_stack.issuer}/connect/endsession")
    page.click("button:text-is('Sign out')")
    page.wait_for_selector("h1:text-is('You are signed out')")
    screenshot(page, "alice-03-provider-signed-out")

    assert page_status(f"{full_stack.url}/claims", cookie) == 302
