"""Redaction of secrets in log lines."""

from __future__ import annotations

import logging

import pytest

from servicekit.logsetup import RedactingFilter, redact

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
