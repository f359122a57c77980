"""Build the gateway_srv application."""

from __future__ import annotations

import asyncio

import aiohttp

from servicekit.resource import AccessTokenValidator
from servicekit.service import Service, make_application
from servicekit.stores import Stores

from .admin import StatusHandler
from .admission import Admission
from .balancer import run_probes
from .proxy import Gateway, ProxyHandler
from .ratelimit import RateLimiter
from .settings import Settings


def create_session(settings: Settings) -> aiohttp.ClientSession:
    """Create the pooled HTTP client for downstream requests.

    Responses pass through byte for byte (no decompression, no cookie jar), and
    idle keep-alive connections are reused for `proxy.keepalive_timeout` seconds.
    """
    connector = aiohttp.TCPConnector(
        limit=settings.proxy.max_connections,
        limit_per_host=settings.proxy.max_connections_per_host,
        keepalive_timeout=settings.proxy.keepalive_timeout,
        ttl_dns_cache=60,
    )
    return aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                 cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)


async def build(settings: Settings, stores: Stores) -> Service:
    session = create_session(settings)
    gateway = Gateway(
        routes=settings.routes,
        proxy=settings.proxy,
        session=session,
        admission=Admission(stores.redis, AccessTokenValidator(settings.auth.tokens, stores.redis),
                            RateLimiter(settings.common.redis.key_prefix)),
        trust_proxy_headers=settings.common.http.trust_proxy_headers,
    )
    app = make_application(settings.common, stores, [
        (r"/_gateway/status", StatusHandler, {
            "gateway": gateway,
            "validator": AccessTokenValidator(settings.auth.admin_tokens, stores.redis),
            "admin_scope": settings.auth.admin_scope,
        }),
        (r"/.*", ProxyHandler, {"gateway": gateway}),
    ])
    probes = asyncio.ensure_future(run_probes(list(gateway.balancers.values()), session,
                                              settings.proxy.probe_interval, settings.proxy.connect_timeout))
    return Service(app=app, tasks=[probes], on_close=[session.close])
