"""Integration tests run real processes; their fixtures are in tests/conftest.py, shared with the
browser tests.

Each runs against one database: PostgreSQL when TEST_DATABASE_URL is set, else SQLite. A real
worker and API against SQLite are covered by the browser tests and by run.sh's own test, and the
store's SQL by tests/test_store.py on both, so running every process-level test twice would only
double the suite's time."""

from __future__ import annotations

import pytest


@pytest.fixture
def database_url(one_database_url: str) -> str:
    return one_database_url
