"""The request boundary and the health endpoints, in process, against real stores."""

from __future__ import annotations

import json
import logging

import pytest
import tornado.web

from identity_srv.settings import load_settings
from servicekit.errors import HttpProblem
from servicekit.service import make_application, open_stores
from servicekit.web import BaseHandler


class TeapotProblem(HttpProblem):
    status = 418
    error = "teapot"


class ProblemHandler(BaseHandler):
    def get(self):
        raise TeapotProblem("short and stout", headers={"WWW-Authenticate": 'Bearer error="x"'},
                            log_detail="brewed twice")


class CrashHandler(BaseHandler):
    def get(self):
        raise ValueError("secret internals password=hunter2")


class RedisHandler(BaseHandler):
    async def get(self):
        await self.settings["stores"].redis.get("k")
        self.write_json({"ok": True})


class EchoHandler(BaseHandler):
    def post(self):
        self.write_json({"size": len(self.request.body)})


class TextErrorHandler(BaseHandler):
    """A handler with its own error body, as the HTML pages have, that skips BaseHandler.write_error."""

    def get(self):
        self.write_json({"ok": True})

    def put(self):
        self.write_json({"ok": True})

    def write_error(self, status_code, **kwargs):
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(f"error {status_code}")


@pytest.fixture
def common(store_env):
    return load_settings({**store_env, "IDENTITY__HTTP__MAX_BODY_BYTES": "2048"}).common


@pytest.fixture
def app(common, io_loop):
    stores = open_stores(common)
    yield make_application(common, stores, [
        (r"/problem", ProblemHandler),
        (r"/crash", CrashHandler),
        (r"/redis", RedisHandler),
        (r"/echo", EchoHandler),
        (r"/text-error", TextErrorHandler),
    ])
    io_loop.run_sync(stores.close)


async def fetch(http_client, url, **kwargs):
    return await http_client.fetch(url, raise_error=False, **kwargs)


@pytest.mark.gen_test
async def test_healthz(http_client, base_url):
    response = await fetch(http_client, base_url + "/healthz")
    assert response.code == 200
    assert json.loads(response.body) == {"status": "ok", "service": "identity_srv"}


@pytest.mark.gen_test
async def test_readyz_when_stores_answer(http_client, base_url):
    response = await fetch(http_client, base_url + "/readyz")
    assert response.code == 200
    assert json.loads(response.body) == {"status": "ready", "checks": {"redis": "ok", "mongodb": "ok"}}


@pytest.mark.gen_test
async def test_problem_has_status_headers_body(http_client, base_url, caplog):
    with caplog.at_level(logging.WARNING, logger="identity_srv.app"):
        response = await fetch(http_client, base_url + "/problem")
    assert response.code == 418
    assert response.headers["WWW-Authenticate"] == 'Bearer error="x"'
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert json.loads(response.body) == {"error": "teapot", "error_description": "short and stout"}
    assert any(r.getMessage().startswith("GET /problem: brewed twice") for r in caplog.records)


@pytest.mark.gen_test
async def test_unexpected_error_is_500_without_trace(http_client, base_url, caplog):
    with caplog.at_level(logging.ERROR, logger="identity_srv.app"):
        response = await fetch(http_client, base_url + "/crash")
    body = json.loads(response.body)
    assert response.code == 500
    assert body["error"] == "server_error"
    assert body["error_description"] == f"internal error; quote request id {response.headers['X-Request-Id']}"
    assert b"Traceback" not in response.body
    assert b"hunter2" not in response.body
    errors = [r for r in caplog.records if r.name == "identity_srv.app"]
    assert len(errors) == 1
    assert errors[0].exc_info is not None


@pytest.mark.gen_test
async def test_unknown_path_is_json_404(http_client, base_url):
    response = await fetch(http_client, base_url + "/nothing-here")
    assert response.code == 404
    assert json.loads(response.body) == {"error": "not_found", "error_description": "no resource at this path"}


@pytest.mark.gen_test
async def test_unsupported_method_is_json_405(http_client, base_url):
    response = await fetch(http_client, base_url + "/healthz", method="DELETE")
    assert response.code == 405
    assert json.loads(response.body)["error"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path,method,allow", [
    ("/problem", "POST", "GET"),
    ("/echo", "GET", "POST"),
    ("/readyz", "PATCH", "GET, HEAD"),
    ("/text-error", "DELETE", "GET, PUT"),
    ("/text-error", "OPTIONS", "GET, PUT"),
])
@pytest.mark.gen_test
async def test_405_allow_lists_implemented_methods(http_client, base_url, path, method, allow):
    body = b"" if method in ("POST", "PATCH") else None
    response = await fetch(http_client, base_url + path, method=method, body=body)
    assert response.code == 405
    assert response.headers["Allow"] == allow


@pytest.mark.gen_test
async def test_allow_only_on_405(http_client, base_url):
    for path in ("/healthz", "/text-error", "/problem", "/nothing-here"):
        response = await fetch(http_client, base_url + path)
        assert response.code != 405, path
        assert "Allow" not in response.headers, path


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
@pytest.mark.gen_test
async def test_head_on_health_endpoints(http_client, base_url, path):
    get = await fetch(http_client, base_url + path)
    head = await fetch(http_client, base_url + path, method="HEAD")
    assert head.code == get.code == 200
    assert head.body == b""
    assert head.headers["Content-Length"] == str(len(get.body))
    assert head.headers["Cache-Control"] == "no-store"


@pytest.mark.gen_test
async def test_body_over_limit_is_413(http_client, base_url):
    response = await fetch(http_client, base_url + "/echo", method="POST", body=b"x" * 4096)
    assert response.code == 413
    assert json.loads(response.body) == {
        "error": "request_too_large", "error_description": "the request body exceeds 2048 bytes"}


@pytest.mark.gen_test
async def test_body_under_limit_accepted(http_client, base_url):
    response = await fetch(http_client, base_url + "/echo", method="POST", body=b"x" * 2048)
    assert response.code == 200
    assert json.loads(response.body) == {"size": 2048}


@pytest.mark.gen_test
async def test_request_id_kept_when_valid(http_client, base_url):
    response = await fetch(http_client, base_url + "/healthz", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"


@pytest.mark.gen_test
async def test_request_id_replaced_when_unsafe(http_client, base_url):
    response = await fetch(http_client, base_url + "/healthz", headers={"X-Request-Id": "a b\tc"})
    assert response.headers["X-Request-Id"] != "a b\tc"
    assert len(response.headers["X-Request-Id"]) == 32


@pytest.mark.gen_test
async def test_access_line_omits_query(http_client, base_url, caplog):
    with caplog.at_level(logging.INFO, logger="identity_srv.access"):
        response = await fetch(http_client, base_url + "/healthz?code=SECRETCODE&state=S",
                               headers={"X-Request-Id": "rid-1"})
    assert response.code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "identity_srv.access"]
    assert len(lines) == 1
    assert lines[0].startswith("GET /healthz 200 ")
    assert lines[0].endswith(" rid=rid-1 client=- sub=-")
    assert "SECRETCODE" not in lines[0]
