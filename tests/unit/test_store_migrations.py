"""The store's schema: Alembic creates exactly ``schema.metadata``, and the store knows Alembic's head."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from sluice.errors import InvalidRequestError, SluiceError
from sluice.store import Store, db, migrations, schema
from sluice.store.migrations import head_revision
from sluice.store.testing import postgres_schema, require_postgres
from sluice.store.tokens import list_tokens
from sluice.store.workspace import workspace_id


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database (no tables at all)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh' / 'sluice.db'}"
    else:
        with postgres_schema(require_postgres()) as url:
            yield url


def engine_for(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        return create_engine("sqlite://", creator=lambda: sqlite3.connect(path), poolclass=NullPool)
    return create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(url), poolclass=NullPool)


def test_head_revision_constant_is_alembics_head() -> None:
    assert head_revision() == db.HEAD_REVISION


def test_migrating_an_empty_database_creates_the_schema(fresh_url: str, tmp_path: Path) -> None:
    Store.open(fresh_url, tmp_path).close()
    engine = engine_for(fresh_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert context.get_current_revision() == db.HEAD_REVISION
            assert compare_metadata(context, schema.metadata) == []
            counters = conn.exec_driver_sql("SELECT name, value FROM counters ORDER BY name").all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in counters] == [("job_id", 0), ("repair_id", 0), ("run_id", 0)]


def test_reopening_keeps_the_data(fresh_url: str, tmp_path: Path) -> None:
    with Store.open(fresh_url, tmp_path) as store:
        job = store.create_job({"name": "kept"}, now=1)
    with Store.open(fresh_url, tmp_path) as store:
        assert store.get_job(job.job_id) == job


def test_a_database_from_a_newer_sluice_is_refused(fresh_url: str, tmp_path: Path) -> None:
    Store.open(fresh_url, tmp_path).close()
    engine = engine_for(fresh_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    finally:
        engine.dispose()
    with pytest.raises(SluiceError, match="newer Sluice"):
        Store.open(fresh_url, tmp_path)


def test_default_store_is_sqlite_under_home_with_durable_settings(tmp_path: Path) -> None:
    home = tmp_path / "a" / "home"
    database = db.connect(None, home)
    try:
        assert database.dialect.name == "sqlite"

        def pragma(name: str) -> object:
            return database.conn.execute(f"PRAGMA {name}", {}).fetchone()[0]

        assert (pragma("journal_mode"), pragma("synchronous"), pragma("foreign_keys")) == ("wal", 2, 1)
        assert pragma("busy_timeout") == db.BUSY_TIMEOUT_SECONDS * 1000
    finally:
        database.close()
    assert (home / "sluice.db").is_file()


def test_in_memory_stores_are_empty_and_independent(tmp_path: Path) -> None:
    with Store.open("sqlite:///:memory:", tmp_path) as one, Store.open("sqlite://", tmp_path) as two:
        one.create_job({"name": "only in one"}, now=1)
        assert (one.count_jobs(), two.count_jobs()) == (1, 0)
        run, _ = two.create_run(
            job_id=None,
            settings={},
            run_name="r",
            run_type="SUBMIT_RUN",
            trigger="ONE_TIME",
            job_parameters=[],
            overriding_parameters={},
            now=1,
            queue_enabled=False,
            max_concurrent_runs=1,
        )
        with pytest.raises(SluiceError, match="does not exist"):
            two.create_task_run(
                job_run_id=run.run_id + 1, task_key="a", attempt_number=0, state="PENDING", now=1
            )
    assert list(tmp_path.iterdir()) == []


def test_unsupported_url_names_the_supported_ones(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match=r"mysql://x.*sqlite:///<path to file>.*postgresql://"):
        Store.open("mysql://x", tmp_path)


@pytest.mark.postgres
def test_postgresql_urls_with_driver_name_are_accepted(tmp_path: Path) -> None:
    with (
        postgres_schema(require_postgres()) as url,
        Store.open(url.replace("postgresql://", "postgresql+psycopg://", 1), tmp_path) as store,
    ):
        assert store.backend == "postgresql"


def test_the_workspace_id_is_drawn_once_per_store(fresh_url: str, tmp_path: Path) -> None:
    with Store.open(fresh_url, tmp_path) as store:
        first = workspace_id(store)
    with Store.open(fresh_url, tmp_path) as store:
        assert workspace_id(store) == first
    assert 10**15 <= first < 10**16
    with Store.open("sqlite:///:memory:", tmp_path) as other:
        assert workspace_id(other) != first


def test_tokens_of_a_0006_store_survive_the_upgrade(fresh_url: str, tmp_path: Path) -> None:
    if fresh_url.startswith("sqlite:///"):
        Path(fresh_url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    engine = engine_for(fresh_url)
    try:
        with engine.begin() as conn:
            command.upgrade(migrations.config(conn), "0006")
            conn.exec_driver_sql(
                "INSERT INTO api_tokens (token_id, token_hash, comment, creation_time, expiry_time, "
                "revoked_time) VALUES ('t1', 'h1', 'old', 1, -1, 0)"
            )
    finally:
        engine.dispose()
    with Store.open(fresh_url, tmp_path) as store:
        (token,) = list_tokens(store)
        assert (token.token_id, token.comment, token.user_name) == ("t1", "old", "")
        assert workspace_id(store) >= 10**15
