"""Tornado handlers of the discovery, JWKS, token, introspection and revocation endpoints.

Each handler parses the HTTP request, calls the protocol module and writes the
response; the protocol rules live in those modules.
"""

from __future__ import annotations

import json

from servicekit.web import BaseHandler

from .client_auth import authenticate
from .clients import Client
from .discovery import discovery_document
from .errors import UnauthorizedClient, UnsupportedGrantType
from .forms import parse_form, required
from .grants import GRANTS
from .introspection import introspect
from .provider import Provider
from .revocation import revoke


class ProviderHandler(BaseHandler):
    def initialize(self, provider: Provider) -> None:
        self.provider = provider

    def check_xsrf_cookie(self) -> None:
        # These endpoints authenticate clients, not browser cookies, so the
        # application-wide XSRF check of the sign-in pages does not apply.
        return None


class DiscoveryHandler(ProviderHandler):
    def initialize(self, provider: Provider) -> None:
        super().initialize(provider)
        self.document = json.dumps(discovery_document(provider.settings), separators=(",", ":"))

    def get(self) -> None:
        self.set_header("Cache-Control", "public, max-age=3600")
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(self.document)

    head = get


class JwksHandler(ProviderHandler):
    def get(self) -> None:
        max_age = self.provider.settings.keys.jwks_max_age
        self.set_header("Cache-Control", f"public, max-age={max_age}")
        # RFC 7517 §8.5 registers this media type for a JWK Set.
        self.set_header("Content-Type", "application/jwk-set+json")
        self.finish(self.provider.keyring.jwks_json())

    head = get


class FormEndpointHandler(ProviderHandler):
    """A POST endpoint that takes a form and authenticates the client.

    Responses carry `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1),
    errors included.
    """

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")
        self.set_header("Pragma", "no-cache")

    def read_form(self) -> dict[str, str]:
        return parse_form(self.request.headers, self.request.body)

    def authenticate_client(self, form: dict[str, str], allow_public: bool = False) -> Client:
        client = authenticate(self.provider.registry, self.request.headers, form, allow_public)
        self.log_client_id = client.client_id
        return client


class TokenHandler(FormEndpointHandler):
    async def post(self) -> None:
        form = self.read_form()
        grant_type = required(form, "grant_type")
        grant = GRANTS.get(grant_type)
        if grant is None:
            raise UnsupportedGrantType("this grant type is not supported")

        client = self.authenticate_client(form, allow_public=True)
        if grant_type not in client.grant_types:
            raise UnauthorizedClient(f"the client may not use the {grant_type} grant")
        request = await grant.validate(self.provider, client, form)
        self.write_json(await grant.issue(self.provider, request))


class IntrospectionHandler(FormEndpointHandler):
    async def post(self) -> None:
        form = self.read_form()
        self.authenticate_client(form)
        self.write_json(await introspect(self.provider, required(form, "token")))


class RevocationHandler(FormEndpointHandler):
    async def post(self) -> None:
        form = self.read_form()
        client = self.authenticate_client(form)
        await revoke(self.provider, client, required(form, "token"))
        # RFC 7009 §2.2: 200 with an empty body, also for an unknown token.
        self.set_status(200)
        self.finish()
