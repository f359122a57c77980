"""Build the webclient_srv application."""

from __future__ import annotations

from servicekit.service import Service, make_application
from servicekit.stores import Stores

from .settings import Settings


async def build(settings: Settings, stores: Stores) -> Service:
    app = make_application(settings.common, stores, [])
    return Service(app=app)
