"""Build the movies_srv application."""

from __future__ import annotations

import asyncio

from servicekit.resource import AccessTokenValidator
from servicekit.service import Service, make_application
from servicekit.stores import Stores

from .access import MovieAccess
from .handlers import (
    OPENAPI_PATH, IdentityHandler, MovieCollectionHandler, MovieHandler, OpenApiHandler,
)
from .settings import Settings
from .store import COLLECTION, MovieStore, create_indexes_when_available


async def build(settings: Settings, stores: Stores) -> Service:
    collection = stores.db[COLLECTION]
    shared = {
        "movies": MovieStore(collection),
        "validator": AccessTokenValidator(settings.tokens, stores.redis),
        "access": MovieAccess.from_settings(settings.access),
        "paging": settings.paging,
        "writes": settings.writes,
    }
    routes = [
        (r"/api/movies", MovieCollectionHandler, shared),
        (r"/api/movies/([^/]+)", MovieHandler, shared),
        (r"/api/identity", IdentityHandler, shared),
        (r"/api/openapi.json", OpenApiHandler, {"document": OPENAPI_PATH.read_bytes()}),
    ]
    app = make_application(settings.common, stores, routes)
    # Created in the background, so the service starts, and returns 503, while MongoDB is down.
    indexes = asyncio.create_task(create_indexes_when_available(collection))
    return Service(app=app, tasks=[indexes])
