"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): tell clients a session ended.

For each client signed in through the ended session that registered a
`backchannel_logout_uri`, the provider POSTs a signed logout token. Delivery is
best effort with a short timeout: a client that is down does not block logout,
and each failure is logged.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from urllib.parse import urlencode

import jwt
import tornado.httpclient

from .provider import Provider
from .sessions import Session

app_log = logging.getLogger("identity_srv.app")
audit_log = logging.getLogger("identity_srv.audit")

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPE = "logout+jwt"
LOGOUT_TOKEN_LIFETIME = 120
DELIVERY_TIMEOUT = 5.0


def logout_token(provider: Provider, client_id: str, session: Session) -> str:
    """Sign a logout token for one client: `sub`, `sid` and the logout event, never a `nonce`."""
    key = provider.keyring.signing_key()
    now = int(time.time())
    claims = {
        "iss": provider.issuer, "aud": client_id, "iat": now, "exp": now + LOGOUT_TOKEN_LIFETIME,
        "jti": secrets.token_urlsafe(16), "sub": session.sub, "sid": session.sid,
        "events": {LOGOUT_EVENT: {}},
    }
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm,
                      headers={"kid": key.kid, "typ": LOGOUT_TOKEN_TYPE})


async def _deliver(provider: Provider, client_id: str, uri: str, session: Session) -> None:
    body = urlencode({"logout_token": logout_token(provider, client_id, session)})
    request = tornado.httpclient.HTTPRequest(
        uri, method="POST", body=body, request_timeout=DELIVERY_TIMEOUT, connect_timeout=DELIVERY_TIMEOUT,
        headers={"Content-Type": "application/x-www-form-urlencoded"}, follow_redirects=False)
    try:
        response = await tornado.httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
    except OSError as exc:
        app_log.warning("back-channel logout to client %s failed: %s: %s", client_id, type(exc).__name__, exc)
        return
    if response.code != 200:
        app_log.warning("back-channel logout to client %s failed: HTTP %d", client_id, response.code)
    else:
        audit_log.info("back-channel logout delivered: client=%s sid=%s", client_id, session.sid)


async def notify_clients(provider: Provider, session: Session) -> None:
    """Send logout tokens to every client of the session that registered a back-channel URI."""
    deliveries = []
    for client_id in session.clients:
        client = provider.registry.clients.get(client_id)
        if client is not None and client.backchannel_logout_uri:
            deliveries.append(_deliver(provider, client_id, client.backchannel_logout_uri, session))
    await asyncio.gather(*deliveries)
