"""The OpenAPI document matches the routes and methods the app serves, both ways."""

from __future__ import annotations

import asyncio
import json

import tornado.web

from movies_srv.app import build
from movies_srv.handlers import OPENAPI_PATH
from movies_srv.settings import load_settings
from servicekit.service import open_stores

HTTP_METHODS = ("get", "head", "post", "put", "patch", "delete")


def served_operations(store_env) -> set[tuple[str, str]]:
    """Return (path template, method) for every route and method of the built app."""

    async def collect() -> set[tuple[str, str]]:
        settings = load_settings(store_env)
        stores = open_stores(settings.common)
        service = await build(settings, stores)
        for task in service.tasks:
            task.cancel()
        operations = set()
        for rule in service.app.wildcard_router.rules:
            path = rule.matcher._path.replace("%s", "{id}")
            for method in HTTP_METHODS:
                if getattr(rule.target, method) is not getattr(tornado.web.RequestHandler, method):
                    operations.add((path, method))
        await asyncio.gather(*service.tasks, return_exceptions=True)
        await stores.close()
        return operations

    return asyncio.run(collect())


def documented_operations() -> set[tuple[str, str]]:
    document = json.loads(OPENAPI_PATH.read_text())
    return {(path, method) for path, item in document["paths"].items() for method in item if method in HTTP_METHODS}


def test_every_route_documented_and_every_path_served(store_env):
    served = served_operations(store_env)
    documented = documented_operations()
    assert served - documented == set()
    assert documented - served == set()
    assert ("/api/movies/{id}", "patch") in served


def test_document_served(api):
    response = api("GET", "/api/openapi.json")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert response.json() == json.loads(OPENAPI_PATH.read_text())
    assert response.json()["openapi"] == "3.0.3"


def test_document_references_resolve():
    document = json.loads(OPENAPI_PATH.read_text())
    text = json.dumps(document)
    references = {part.split('"')[0] for part in text.split('"$ref": "')[1:]}
    for reference in references:
        node = document
        for key in reference.removeprefix("#/").split("/"):
            node = node[key]
        assert isinstance(node, dict), reference
