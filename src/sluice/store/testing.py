"""Test harness for the store: throw-away PostgreSQL schemas, so parallel test runs never collide.

The server comes from ``SLUICE_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

POSTGRES_URL_ENV = "SLUICE_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

#: Every table the store writes, for ``reset_postgres``.
_TABLES = (
    "jobs, runs, task_runs, task_values, repairs, idempotency_tokens, secrets, secret_scopes, api_tokens, "
    "scheduler_triggers, scheduler_slots, scheduler_files, "
    "notifications, notification_attempts, notification_destinations, notification_cursors, "
    "catalog_functions, catalog_volumes, catalog_tables, catalog_schemas, catalogs"
)


def postgres_server_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)


def postgres_unreachable(url: str | None = None) -> str | None:
    """Why the test server cannot be used, or None when it can."""
    import psycopg  # the driver is a test dependency

    try:
        psycopg.connect(url or postgres_server_url(), connect_timeout=5).close()
    except psycopg.Error as exc:
        return f"PostgreSQL at {url or postgres_server_url()} is unreachable: {exc}"
    return None


def require_postgres() -> str:
    """The test server's URL; inside pytest, fail (when ``CI=true``) or skip when it is unreachable."""
    import pytest  # only tests call this

    reason = postgres_unreachable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return postgres_server_url()


def url_with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@contextmanager
def postgres_schema(url: str | None = None) -> Iterator[str]:
    """Create schema ``sluice_test_<random>``; yield a store URL that uses it; drop it afterwards."""
    import psycopg  # the driver is a test dependency

    server = url or postgres_server_url()
    schema = f"sluice_test_{secrets.token_hex(6)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")  # a generated identifier
    try:
        yield url_with_search_path(server, schema)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def reset_postgres(url: str) -> None:
    """Empty every table of the store at ``url`` and restart its id counters."""
    import psycopg  # the driver is a test dependency

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {_TABLES}")
        conn.execute("UPDATE counters SET value = 0")
        # What migration 0006 seeds: a fresh install has catalog workspace with schema default.
        conn.execute("INSERT INTO catalogs (name, comment, created_time) VALUES ('workspace', '', 0)")
        conn.execute(
            "INSERT INTO catalog_schemas (catalog_name, schema_name, comment, created_time)"
            " VALUES ('workspace', 'default', '', 0)"
        )
