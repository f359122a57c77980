"""Settings of webclient_srv, read from conf/common.toml and conf/webclient.toml."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from servicekit.resource.jwks import ASYMMETRIC_ALGORITHMS
from servicekit.settings import (
    CommonSettings,
    Reader,
    SettingsError,
    load_raw,
    read_common,
)

SERVICE = "webclient_srv"
ENV_PREFIX = "WEBCLIENT"
DEFAULT_PORT = 5002

# The client secret shipped in conf/webclient.toml and conf/clients.toml for development.
DEVELOPMENT_CLIENT_SECRET = "secret"

REDIRECT_PATH = "/signin-oidc"
POST_LOGOUT_REDIRECT_PATH = "/signout-callback-oidc"
# Register <public_url><BACKCHANNEL_LOGOUT_PATH> as the client's `backchannel_logout_uri`.
BACKCHANNEL_LOGOUT_PATH = "/backchannel-logout"


@dataclass(frozen=True)
class OidcSettings:
    """The relying party's registration at the provider and how it checks ID tokens."""

    client_id: str
    client_secret: str
    # Space-separated scopes requested at sign-in.
    scope: str
    # The application's public base URL, without a trailing slash; the redirect
    # URIs registered at the provider start with it.
    public_url: str
    # Signature algorithms accepted on ID tokens; only asymmetric ones.
    algorithms: frozenset[str]
    # Seconds of clock skew allowed on `exp` and `iat`.
    leeway: float
    # Seconds each request to the provider (discovery, JWKS, token, UserInfo) may take.
    http_timeout: float
    # Seconds the discovery document and the JWKS are cached.
    metadata_max_age: float
    # Minimum seconds between two JWKS fetches caused by an unknown key id.
    jwks_refetch_interval: float
    # "post": the ID token goes to the end-session endpoint as `id_token_hint` in a
    # POST form, and the user is signed out at once. "get": a redirect without the
    # ID token, and the provider asks the user to confirm. See docs/webclient.md.
    end_session_method: str

    @property
    def redirect_uri(self) -> str:
        return self.public_url + REDIRECT_PATH

    @property
    def post_logout_redirect_uri(self) -> str:
        return self.public_url + POST_LOGOUT_REDIRECT_PATH

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")


@dataclass(frozen=True)
class SessionSettings:
    """The server-side session in Redis and the cookies that name it; times in seconds."""

    cookie_name: str
    # A session ends this long after sign-in, whatever the refresh token allows.
    lifetime: int
    # How long a started sign-in may take before its callback is refused.
    pending_lifetime: int
    # The access token is refreshed when it expires within this many seconds.
    refresh_margin: int
    # How long one request may hold the session's refresh lock.
    refresh_lock_timeout: float


@dataclass(frozen=True)
class GatewaySettings:
    url: str
    # Seconds each call to the movies API may take.
    timeout: float


@dataclass(frozen=True)
class Settings:
    common: CommonSettings
    oidc: OidcSettings
    session: SessionSettings
    gateway: GatewaySettings


def _read_oidc(reader: Reader) -> OidcSettings:
    algorithms = frozenset(reader.string_list("oidc.algorithms", ["RS256", "ES256"]))
    unsupported = sorted(algorithms - ASYMMETRIC_ALGORITHMS)
    if unsupported:
        raise SettingsError(f"setting 'oidc.algorithms' contains {', '.join(unsupported)}: use only "
                            f"asymmetric algorithms in {reader.source}")
    scope = reader.string("oidc.scope", "openid profile email address roles movieAPI offline_access")
    if "openid" not in scope.split():
        raise SettingsError(f"setting 'oidc.scope' is {scope!r}: OpenID Connect needs the openid scope "
                            f"in {reader.source}")
    public_url = reader.url("oidc.public_url", ("http", "https"), "http://localhost:5002").rstrip("/")
    client_secret = reader.string("oidc.client_secret")
    if public_url.startswith("https://") and client_secret == DEVELOPMENT_CLIENT_SECRET:
        raise SettingsError(f"oidc.public_url {public_url} is https but oidc.client_secret is the development "
                            f"secret: set WEBCLIENT__OIDC__CLIENT_SECRET to the client's real secret")
    return OidcSettings(
        client_id=reader.string("oidc.client_id", "movies_mvc_client"),
        client_secret=client_secret,
        scope=scope,
        public_url=public_url,
        algorithms=algorithms,
        leeway=reader.number("oidc.leeway", 30.0),
        http_timeout=reader.number("oidc.http_timeout", 5.0, minimum=0.1),
        metadata_max_age=reader.number("oidc.metadata_max_age", 300.0, minimum=1.0),
        jwks_refetch_interval=reader.number("oidc.jwks_refetch_interval", 30.0, minimum=0.1),
        end_session_method=reader.string("oidc.end_session_method", "post", choices=("post", "get")),
    )


def load_settings(env: Mapping[str, str] = os.environ) -> Settings:
    reader = Reader(load_raw("webclient.toml", ENV_PREFIX, env), "conf/webclient.toml or the environment")
    common = read_common(reader, SERVICE, DEFAULT_PORT, uses_mongo=False,
                         redis_prefix="web:", mongo_database="")
    oidc = _read_oidc(reader)
    session = SessionSettings(
        cookie_name=reader.string("session.cookie_name", "webclient_session"),
        lifetime=reader.integer("session.lifetime", 8 * 3600, minimum=60),
        pending_lifetime=reader.integer("session.pending_lifetime", 600, minimum=10),
        refresh_margin=reader.integer("session.refresh_margin", 60, minimum=0),
        refresh_lock_timeout=reader.number("session.refresh_lock_timeout", 10.0, minimum=0.5),
    )
    # A lock that expired during a slow refresh would let a second request spend
    # the same refresh token, so the lock must outlast the token request.
    if session.refresh_lock_timeout <= oidc.http_timeout:
        raise SettingsError(f"setting 'session.refresh_lock_timeout' is {session.refresh_lock_timeout:g}: use more "
                            f"than oidc.http_timeout ({oidc.http_timeout:g} seconds) in {reader.source}")
    gateway = GatewaySettings(
        url=reader.url("gateway.url", ("http", "https"), "http://localhost:5010").rstrip("/"),
        timeout=reader.number("gateway.timeout", 10.0, minimum=0.1),
    )
    return Settings(common=common, oidc=oidc, session=session, gateway=gateway)
