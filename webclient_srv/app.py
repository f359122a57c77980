"""Build the webclient_srv application."""

from __future__ import annotations

from pathlib import Path

import tornado.web

from servicekit.service import Service, make_application
from servicekit.stores import Stores

from .account_pages import AdminHandler, ClaimsHandler, HomeHandler
from .auth_pages import (
    SignInCallbackHandler,
    SignInHandler,
    SignOutCallbackHandler,
    SignOutHandler,
)
from .backchannel_logout import BackchannelLogoutHandler
from .movie_pages import (
    MovieCreateHandler,
    MovieDeleteHandler,
    MovieDetailsHandler,
    MovieEditHandler,
    MovieListHandler,
)
from .movies_api import MoviesApi
from .pages import PageHandler
from .relying_party import RelyingParty
from .sessions import PendingSignInStore, SessionStore
from .settings import (
    BACKCHANNEL_LOGOUT_PATH,
    POST_LOGOUT_REDIRECT_PATH,
    REDIRECT_PATH,
    Settings,
)

PACKAGE = Path(__file__).resolve().parent

ADMIN_ROLE = "admin"

# A movie id as it appears in a page address; the API decides whether it exists.
MOVIE_ID = r"([A-Za-z0-9_-]{1,64})"


class NotFoundPage(PageHandler):
    """An HTML 404 for any path no other route matches."""

    async def prepare(self) -> None:
        await super().prepare()
        raise tornado.web.HTTPError(404)


def routes(relying_party: RelyingParty, movies: MoviesApi) -> list:
    page = {"relying_party": relying_party}
    movie_page = {"relying_party": relying_party, "movies": movies}
    return [
        (r"/", HomeHandler, page),
        (r"/signin", SignInHandler, page),
        (REDIRECT_PATH, SignInCallbackHandler, page),
        (r"/signout", SignOutHandler, page),
        (POST_LOGOUT_REDIRECT_PATH, SignOutCallbackHandler, page),
        (BACKCHANNEL_LOGOUT_PATH, BackchannelLogoutHandler, page),
        (r"/claims", ClaimsHandler, page),
        (r"/admin", AdminHandler, page),
        (r"/movies", MovieListHandler, movie_page),
        (r"/movies/new", MovieCreateHandler, movie_page),
        (rf"/movies/{MOVIE_ID}", MovieDetailsHandler, movie_page),
        (rf"/movies/{MOVIE_ID}/edit", MovieEditHandler, movie_page),
        (rf"/movies/{MOVIE_ID}/delete", MovieDeleteHandler, movie_page),
        (r"/.*", NotFoundPage, page),
    ]


async def build(settings: Settings, stores: Stores) -> Service:
    prefix = settings.common.redis.key_prefix
    sessions = SessionStore(stores.redis, prefix, settings.session.lifetime)
    pending = PendingSignInStore(stores.redis, prefix, settings.session.pending_lifetime)
    relying_party = RelyingParty(settings, sessions, pending)
    movies = MoviesApi(settings.gateway.url, settings.gateway.timeout)
    secure = settings.oidc.secure_cookies
    app = make_application(
        settings.common, stores, routes(relying_party, movies),
        template_path=str(PACKAGE / "templates"),
        static_path=str(PACKAGE / "static"),
        xsrf_cookies=True,
        xsrf_cookie_kwargs={"httponly": True, "samesite": "Lax", "secure": secure},
        issuer=settings.common.issuer,
        session_cookie=settings.session.cookie_name,
        secure_cookies=secure,
        pending_lifetime=settings.session.pending_lifetime,
        admin_role=ADMIN_ROLE,
    )
    return Service(app=app)
