"""A real identity_srv process per test, against the session's Redis and SecantusDB."""

from __future__ import annotations

import pytest

from tests.support.identity import identity_service  # noqa: F401  (fixture)
