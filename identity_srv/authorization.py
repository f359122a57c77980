"""Parsing and checking an authorization request (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1).

`parse_authorization_request` reads the parameters and raises:

* `InvalidAuthorizationTarget` when the client or the redirect URI cannot be
  trusted. The user sees an error page and is never redirected, because a
  redirect to an unverified URI is an open redirector (RFC 6749 §4.1.2.1).
* `AuthorizationError` for everything else, which is sent back to the client's
  verified redirect URI with `error`, `state` and `iss` (RFC 9207).

Nothing here touches a store; the handler decides on sign-in and consent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping
from urllib.parse import urlencode

from . import pkce
from .clients import SCOPE_TOKEN, Client, Registry


PROMPTS = ("none", "login", "consent", "select_account")
MAX_STATE_LENGTH = 2048
MAX_NONCE_LENGTH = 512
MAX_LOGIN_HINT_LENGTH = 255

# The parameters that must not be repeated. Others are ignored (RFC 6749 §3.1).
_SINGLE = ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge",
           "code_challenge_method", "prompt", "max_age", "login_hint", "response_mode", "request",
           "request_uri", "registration")


class InvalidAuthorizationTarget(Exception):
    """The client or redirect URI is unknown or invalid: show an error page, never redirect.

    `description` is shown to the user.
    """

    def __init__(self, description: str):
        super().__init__(description)
        self.description = description


class AuthorizationError(Exception):
    """An error sent to the client's verified redirect URI as `error` and `error_description`."""

    def __init__(self, error: str, description: str, redirect_uri: str, state: str | None):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked authorization request; serializable so it can wait in Redis during sign-in."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str
    state: str | None = None
    nonce: str | None = None
    prompt: tuple[str, ...] = ()
    max_age: int | None = None
    login_hint: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AuthorizationRequest":
        return cls(**{**data, "scopes": tuple(data["scopes"]), "prompt": tuple(data["prompt"])})


def redirect_with(redirect_uri: str, params: Mapping[str, str | None]) -> str:
    """Append `params` (without None values) to the redirect URI's query.

    The registered URI may already have a query, which must be kept (RFC 6749 §3.1.2).
    """
    query = urlencode({name: value for name, value in params.items() if value is not None})
    separator = "&" if "?" in redirect_uri else "?"
    return f"{redirect_uri}{separator}{query}"


def _single_values(arguments: Mapping[str, list[str]]) -> tuple[dict[str, str], list[str]]:
    """Return the first value of each parameter and the names that were repeated."""
    values: dict[str, str] = {}
    repeated = []
    for name, items in arguments.items():
        if len(items) > 1 and name in _SINGLE:
            repeated.append(name)
        if items and items[0] != "":
            values[name] = items[0]
    return values, repeated


def _target(registry: Registry, params: dict[str, str], repeated: list[str]) -> tuple[Client, str]:
    """Return the client and its verified redirect URI, or raise InvalidAuthorizationTarget."""
    if "client_id" in repeated or "redirect_uri" in repeated:
        raise InvalidAuthorizationTarget("client_id and redirect_uri must each appear once")
    client = registry.clients.get(params.get("client_id", ""))
    if client is None:
        raise InvalidAuthorizationTarget("the client_id is missing or unknown")
    # OpenID Connect requires redirect_uri, and exact string comparison leaves no
    # room for open redirects through prefixes, case or extra query parameters.
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None or redirect_uri not in client.redirect_uris:
        raise InvalidAuthorizationTarget("the redirect_uri is missing or not registered for this client")
    return client, redirect_uri


def parse_authorization_request(registry: Registry, arguments: Mapping[str, list[str]]) -> AuthorizationRequest:
    """Check an authorization request given as parameter name -> list of values."""
    params, repeated = _single_values(arguments)
    client, redirect_uri = _target(registry, params, repeated)
    # A state that is repeated or too long is not echoed: the client could not
    # match it to its request anyway.
    state = params.get("state")
    if "state" in repeated or state is not None and len(state) > MAX_STATE_LENGTH:
        state = None

    def fail(error: str, description: str) -> AuthorizationError:
        return AuthorizationError(error, description, redirect_uri, state)

    if repeated:
        raise fail("invalid_request", f"parameter {repeated[0]} is repeated")
    if state is None and "state" in params and "state" not in repeated:
        raise fail("invalid_request", f"state is longer than {MAX_STATE_LENGTH} characters")
    for name, error in (("request", "request_not_supported"), ("request_uri", "request_uri_not_supported"),
                        ("registration", "registration_not_supported")):
        if name in params:
            raise fail(error, f"the {name} parameter is not supported")

    # Authorization code only: no implicit or hybrid flow.
    if params.get("response_type") != "code":
        raise fail("unsupported_response_type", "response_type must be code")
    if params.get("response_mode", "query") != "query":
        raise fail("invalid_request", "response_mode must be query")
    if "authorization_code" not in client.grant_types:
        raise fail("unauthorized_client", "the client may not use the authorization code flow")

    scopes = _scopes(params.get("scope"), client, fail)
    code_challenge = _code_challenge(params, fail)
    prompt = _prompt(params.get("prompt"), fail)
    max_age = _max_age(params.get("max_age"), fail)

    nonce = params.get("nonce")
    if nonce is not None and len(nonce) > MAX_NONCE_LENGTH:
        raise fail("invalid_request", f"nonce is longer than {MAX_NONCE_LENGTH} characters")
    login_hint = params.get("login_hint")
    if login_hint is not None and len(login_hint) > MAX_LOGIN_HINT_LENGTH:
        login_hint = None

    return AuthorizationRequest(
        client_id=client.client_id, redirect_uri=redirect_uri, scopes=scopes,
        code_challenge=code_challenge, state=state, nonce=nonce, prompt=prompt, max_age=max_age,
        login_hint=login_hint,
    )


def _scopes(text: str | None, client: Client, fail) -> tuple[str, ...]:
    if not text:
        raise fail("invalid_scope", "scope is missing")
    tokens = text.split(" ")
    if any(not SCOPE_TOKEN.match(token) for token in tokens):
        raise fail("invalid_scope", "scope must be scope names separated by single spaces")
    scopes = tuple(dict.fromkeys(tokens))
    for scope in scopes:
        if scope not in client.scopes:
            raise fail("invalid_scope", f"scope {scope} is not allowed for this client")
    if "offline_access" in scopes and "refresh_token" not in client.grant_types:
        raise fail("invalid_scope", "offline_access is not allowed for this client")
    return scopes


def _code_challenge(params: dict[str, str], fail) -> str:
    # PKCE is required for every client, and only S256: a missing method means
    # `plain` (RFC 7636 §4.3), which is rejected like an explicit `plain`.
    challenge = params.get("code_challenge")
    if challenge is None:
        raise fail("invalid_request", "code_challenge is required (PKCE with S256)")
    if params.get("code_challenge_method") != pkce.METHOD:
        raise fail("invalid_request", "code_challenge_method must be S256")
    if not pkce.is_valid_challenge(challenge):
        raise fail("invalid_request", "code_challenge must be 43 base64url characters")
    return challenge


def _prompt(text: str | None, fail) -> tuple[str, ...]:
    if text is None:
        return ()
    values = tuple(dict.fromkeys(text.split(" ")))
    unknown = [value for value in values if value not in PROMPTS]
    if unknown:
        raise fail("invalid_request", f"prompt value {unknown[0][:40]} is not supported")
    # OpenID Connect Core §3.1.2.1: "none" must not be combined with other values.
    if "none" in values and len(values) > 1:
        raise fail("invalid_request", "prompt=none cannot be combined with other values")
    return values


def _max_age(text: str | None, fail) -> int | None:
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise fail("invalid_request", "max_age must be a whole number of seconds")
    return int(text)
