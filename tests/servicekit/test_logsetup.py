"""Redaction of secrets in log lines."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicekit.logsetup import (
    _CREDENTIAL,
    _HEADER,
    _JWT,
    _SECRET_PARAM,
    FORMAT,
    REDACTED,
    RedactingFilter,
    ServiceFormatter,
    redact,
)

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(f"token {JWT} issued", "token [redacted] issued", id="bare-jwt"),
        pytest.param("GET /cb?code=abc&state=xyz", "GET /cb?code=[redacted]&state=[redacted]", id="query"),
        pytest.param("password=hunter2 user=alice", "password=[redacted] user=alice", id="form-password"),
        pytest.param("client_secret=s3cr3t&grant_type=x", "client_secret=[redacted]&grant_type=x",
                     id="form-client-secret"),
        pytest.param("Authorization: Basic bW92aWU6c2VjcmV0", "Authorization: [redacted]", id="header"),
        pytest.param("sent Bearer abc.def to upstream", "sent Bearer [redacted] to upstream", id="bearer"),
        pytest.param("GET /movies 200 1.2ms rid=abc", "GET /movies 200 1.2ms rid=abc", id="plain-line-kept"),
    ],
)
def test_redact(line, expected):
    assert redact(line) == expected


def test_filter_rewrites_formatted_message():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "issued %s to %s", (JWT, "alice"), None)
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == "issued [redacted] to alice"


def redact_every_pattern(text: str) -> str:
    """Run all four patterns unconditionally: what `redact` must return for any text."""
    text = _JWT.sub(REDACTED, text)
    text = _HEADER.sub(lambda m: f"{m.group(1)}: {REDACTED}", text)
    text = _CREDENTIAL.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", text)


# Pieces that make the patterns match, with case variants and letters that
# re.IGNORECASE matches to ASCII letters (long s, Kelvin sign, dotless i).
FRAGMENTS = st.sampled_from([
    JWT, "eyJ", "eYj", "code=", "CODE=", "ſtate=", "tоken=", "token=", "id_token_hint=", "password=",
    "Password=", "nonce=", "\u212aey", "cl\u0131ent_secret=", "client_secret=", "Bearer ", "BASIC ",
    "basic\t", "Authorization: ", "cookie:", "Set-Cookie: ", "=", "&", " ", "x", "abc.def", "\n", ";",
    "cl\u0130ent_secret=", "Author\u0130zation: ", "Bas\u0130c ", "\u0130d_token_hint=",
])


@pytest.mark.parametrize("line", ["cl\u0130ent_secret=hunter2", "Bas\u0131c dXNlcjpwYXNz", "\u212aey"])
def test_redact_matches_every_pattern_on_unicode_case(line):
    assert redact(line) == redact_every_pattern(line)


@given(st.lists(st.one_of(FRAGMENTS, st.text(max_size=8)), max_size=12).map("".join))
def test_redact_skips_only_patterns_that_cannot_match(text):
    assert redact(text) == redact_every_pattern(text)


def test_filter_leaves_no_arguments_to_format_again():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "user %s took %d ms", ("alice", 12), None)
    RedactingFilter().filter(record)
    assert record.msg == "user alice took 12 ms"
    assert record.args is None


@pytest.mark.parametrize("created", [
    pytest.param([1764900000.001, 1764900000.999, 1764900001.5, 1764900000.25], id="back-and-forth"),
    pytest.param([1764899999.9995, 1764900000.0004], id="second-boundary"),
])
def test_service_formatter_matches_standard_formatter(created):
    ours, standard = ServiceFormatter(), logging.Formatter(FORMAT)
    for moment in created:
        record = logging.LogRecord("svc.app", logging.INFO, __file__, 1, "started", None, None)
        record.created = moment
        record.msecs = (moment - int(moment)) * 1000
        assert ours.format(record) == standard.format(record)
