"""Random and hostile input to the form endpoints: a clean 4xx or 200, never a 5xx."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.identity.test_errors import Case, send

PATHS = st.sampled_from(["/connect/token", "/connect/introspect", "/connect/revocation"])
NAMES = st.sampled_from(["grant_type", "client_id", "client_secret", "scope", "token", "token_type_hint", "x"])
VALUES = st.text(max_size=40)
FORMS = st.lists(st.tuples(NAMES, VALUES), max_size=6)
HEADER_VALUES = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=60)
AUTHORIZATION = st.one_of(st.none(), HEADER_VALUES, HEADER_VALUES.map(lambda text: "Basic " + text))


def _check(code: int, raw: bytes) -> None:
    assert code < 500, raw
    if raw:
        answer = json.loads(raw)
        assert "error" in answer or "active" in answer or "access_token" in answer


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=PATHS, form=FORMS, authorization=AUTHORIZATION)
def test_random_forms_get_clean_answers(shared_provider, path, form, authorization):
    headers = [] if authorization is None else [("Authorization", authorization)]
    code, _, raw = send(shared_provider.url, Case(path, form, headers=headers))
    _check(code, raw)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=PATHS, body=st.binary(max_size=200))
def test_random_bodies_get_clean_answers(shared_provider, path, body):
    code, _, raw = send(shared_provider.url, Case(path, body))
    _check(code, raw)


def test_no_traceback_after_random_input(shared_provider):
    assert "Traceback" not in shared_provider.log()
