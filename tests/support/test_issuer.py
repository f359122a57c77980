"""A test issuer: discovery and a JWKS on a free port, and a signer for crafted tokens.

`TestIssuer` serves `/.well-known/openid-configuration` and its `jwks_uri` from a
Tornado server on its own thread and event loop, so both in-process tests and
service processes (pointed at it with `ISSUER`) can fetch its keys. It has one
RSA key (`kid` "rsa-1", RS256) and one EC P-256 key ("ec-1", ES256); tests can
add, remove or rotate keys, take the server down, and count requests.

`sign()` builds tokens with any header and claims, including ones PyJWT refuses
to produce (`alg` `none`, HS256 with the RSA public key as the HMAC secret).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
import tornado.httpserver
import tornado.web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from servicekit.embedded import free_port

AUDIENCE = "movieAPI"
MACHINE_CLIENT = "movieClient"
BROWSER_CLIENT = "movies_mvc_client"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_segment(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private_key: Any

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk = algorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def new_rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def new_ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


@dataclass
class TestIssuer:
    """An issuer for tests; `start()` serves it, `stop()` ends it."""

    __test__ = False  # not a pytest test class

    port: int = field(default_factory=free_port)
    keys: dict[str, SigningKey] = field(default_factory=dict)
    discovery_requests: int = 0
    jwks_requests: int = 0
    # When set, discovery names this issuer instead of the real one.
    discovery_issuer: str | None = None
    # Members added to the discovery document, for example a relying party's endpoints.
    discovery_extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.keys:
            for key in (new_rsa_key("rsa-1"), new_ec_key("ec-1")):
                self.keys[key.kid] = key
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: tornado.httpserver.HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- server -------------------------------------------------------------

    def start(self) -> "TestIssuer":
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the test issuer did not start within 10s")
        return self

    def _run(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        app = tornado.web.Application([
            (r"/\.well-known/openid-configuration", _DiscoveryHandler, {"issuer": self}),
            (r"/\.well-known/openid-configuration/jwks", _JwksHandler, {"issuer": self}),
        ], log_function=lambda handler: None)
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.listen(self.port, address="127.0.0.1")
        ready.set()
        self._loop.run_forever()
        self._loop.close()

    def stop(self) -> None:
        """Stop serving; the port is closed when this returns. `start()` serves again."""
        if self._loop is None:
            return
        done = threading.Event()

        def shut() -> None:
            self._server.stop()
            self._loop.call_soon(self._loop.stop)
            done.set()

        self._loop.call_soon_threadsafe(shut)
        done.wait(5)
        self._thread.join(5)
        self._loop = None

    # -- keys and tokens ----------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys.values()]}

    def add_key(self, key: SigningKey) -> SigningKey:
        self.keys[key.kid] = key
        return key

    def claims(self, *, sub: str | None = None, client_id: str = MACHINE_CLIENT,
               scope: str = AUDIENCE, lifetime: int = 300, **extra: Any) -> dict[str, Any]:
        """Return valid access token claims; `sub` defaults to `client_id` (a machine token)."""
        now = int(time.time())
        claims = {
            "iss": self.url, "sub": sub or client_id, "aud": AUDIENCE, "client_id": client_id,
            "scope": scope, "jti": uuid.uuid4().hex, "iat": now, "nbf": now, "exp": now + lifetime,
        }
        claims.update(extra)
        return claims

    def user_claims(self, sub: str, roles: list[str] | None = None, **extra: Any) -> dict[str, Any]:
        """Return claims of a user's token issued to the browser client."""
        claims = self.claims(sub=sub, client_id=BROWSER_CLIENT, **extra)
        if roles is not None:
            claims["role"] = roles
        return claims

    def sign(self, claims: dict[str, Any] | None = None, *, kid: str = "rsa-1",
             header: dict[str, Any] | None = None) -> str:
        """Sign `claims` (default: a valid machine token) with the key `kid`.

        `header` entries override the default header `{"alg", "typ": "at+jwt",
        "kid"}`; a value of None removes the entry. The key's own algorithm signs,
        whatever `alg` the header claims.
        """
        key = self.keys[kid]
        full_header = {"alg": key.algorithm, "typ": "at+jwt", "kid": kid}
        for name, value in (header or {}).items():
            if value is None:
                full_header.pop(name, None)
            else:
                full_header[name] = value
        signing_input = f"{_json_segment(full_header)}.{_json_segment(claims or self.claims())}"
        algorithm = jwt.get_algorithm_by_name(key.algorithm)
        signature = algorithm.sign(signing_input.encode("ascii"), key.private_key)
        return f"{signing_input}.{b64url(signature)}"

    def sign_none(self, claims: dict[str, Any] | None = None) -> str:
        """Return an unsigned token with `alg` `none` (RFC 7519 §6)."""
        header = {"alg": "none", "typ": "at+jwt", "kid": "rsa-1"}
        return f"{_json_segment(header)}.{_json_segment(claims or self.claims())}."

    def sign_hs256_with_public_key(self, claims: dict[str, Any] | None = None,
                                   kid: str = "rsa-1") -> str:
        """Return an HS256 token whose HMAC secret is the RSA public key's PEM.

        The classic key-confusion attack: a verifier that lets the token choose the
        algorithm would check this HMAC with the public key and accept it.
        """
        header = {"alg": "HS256", "typ": "at+jwt", "kid": kid}
        signing_input = f"{_json_segment(header)}.{_json_segment(claims or self.claims())}"
        mac = hmac.new(self.keys[kid].public_pem(), signing_input.encode("ascii"), hashlib.sha256)
        return f"{signing_input}.{b64url(mac.digest())}"


class _IssuerHandler(tornado.web.RequestHandler):
    def initialize(self, issuer: TestIssuer) -> None:
        self.issuer = issuer


class _DiscoveryHandler(_IssuerHandler):
    def get(self) -> None:
        self.issuer.discovery_requests += 1
        self.write({
            "issuer": self.issuer.discovery_issuer or self.issuer.url,
            "jwks_uri": f"{self.issuer.url}/.well-known/openid-configuration/jwks",
            "token_endpoint": f"{self.issuer.url}/connect/token",
            **self.issuer.discovery_extra,
        })


class _JwksHandler(_IssuerHandler):
    def get(self) -> None:
        self.issuer.jwks_requests += 1
        self.write(self.issuer.jwks())
