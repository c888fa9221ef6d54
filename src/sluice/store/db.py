"""Connections to the store's database and the few differences between SQLite and PostgreSQL.

The store's queries are plain DB-API calls on stdlib ``sqlite3`` or ``psycopg`` 3: SQLAlchemy and Alembic
are imported only to create or upgrade the schema (``sluice.store.migrations``), never to open an
up-to-date database. SQL is written once, portable, with ``:name`` parameters and two markers that
``Dialect.prepare`` expands:

- ``{for_update}``: a row lock on PostgreSQL (``FOR UPDATE``); nothing on SQLite, where every write
  transaction starts with ``BEGIN IMMEDIATE`` and so holds the database's single write lock.
- ``{ids:name}``: "is one of the ids in parameter ``name``" (``= ANY(...)`` on PostgreSQL, ``json_each`` on
  SQLite); bind the value with ``Dialect.ids``.

Both connections run in autocommit mode: a lone statement commits by itself, and ``begin``/``commit``
bracket multi-statement transactions.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sluice.errors import InvalidRequestError, SluiceError

if TYPE_CHECKING:
    from sqlalchemy import Engine

#: The newest migration's revision id. Opening a database whose ``alembic_version`` holds this id is the fast
#: path (no Alembic, no SQLAlchemy). A test checks that it equals Alembic's head.
HEAD_REVISION = "0008"

#: How long a connection waits for another writer before giving up (SQLite busy_timeout).
BUSY_TIMEOUT_SECONDS = 30.0

#: ``pg_advisory_lock`` key held while migrating, so concurrent openers migrate once.
_PG_MIGRATION_LOCK = 0x51_0C_E5_70_2E


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Any: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Mapping[str, Any], /) -> Any: ...

    def close(self) -> None: ...


_PARAM = re.compile(r"(?<![:\w]):(\w+)")
_MARKER = re.compile(r"\{(for_update|ids):?(\w*)\}")


class Dialect:
    """What differs between the backends, and nothing else."""

    __slots__ = ("begin_sql", "for_update", "name", "pyformat")

    def __init__(self, *, name: str, begin_sql: str, for_update: str, pyformat: bool) -> None:
        self.name = name
        #: Statement that opens a write transaction.
        self.begin_sql = begin_sql
        #: Row lock suffix for ``SELECT``.
        self.for_update = for_update
        #: psycopg's ``%(name)s`` parameters (and ``%`` escaped), instead of sqlite3's ``:name``.
        self.pyformat = pyformat

    def prepare(self, sql: str) -> str:
        """Expand the markers and translate ``:name`` parameters to this driver's paramstyle."""
        sql = _MARKER.sub(self._marker, sql)
        if self.pyformat:
            sql = _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))
        return sql

    def _marker(self, match: re.Match[str]) -> str:
        if match.group(1) == "for_update":
            return self.for_update
        name = match.group(2)
        if self.pyformat:
            return f"= ANY(:{name})"
        return f"IN (SELECT value FROM json_each(:{name}))"  # noqa: S608 - a parameter name, not a value

    def ids(self, values: Sequence[int]) -> object:
        """The bound value for an ``{ids:name}`` marker."""
        if self.pyformat:
            return list(values)
        return json.dumps(list(values))


SQLITE = Dialect(name="sqlite", begin_sql="BEGIN IMMEDIATE", for_update="", pyformat=False)
POSTGRES = Dialect(name="postgresql", begin_sql="BEGIN", for_update=" FOR UPDATE", pyformat=True)


def _sqlite_unavailable(exc: BaseException) -> bool:
    """SQLite reports a locked or unreadable database and a bad statement alike as OperationalError."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and any(
        word in text for word in ("locked", "busy", "disk i/o", "unable to open", "readonly")
    )


class Database:
    """One DB-API connection in autocommit mode, with its dialect and its driver's error classes."""

    def __init__(
        self,
        conn: Connection,
        dialect: Dialect,
        *,
        integrity_errors: tuple[type[Exception], ...],
        migrate: Callable[[Database], None],
        description: str,
        unavailable: Callable[[BaseException], bool] = lambda _exc: False,
    ) -> None:
        self.conn = conn
        self.dialect = dialect
        self.integrity_errors = integrity_errors
        #: Whether an error says the database could not do the work (locked, connection lost), so that
        #: the work is worth trying again, rather than that the work was wrong.
        self.unavailable = unavailable
        self.description = description
        self._migrate = migrate
        self._prepared: dict[str, str] = {}

    def sql(self, text: str) -> str:
        """``text`` prepared for this dialect (cached: the store's statements are constants)."""
        prepared = self._prepared.get(text)
        if prepared is None:
            prepared = self._prepared[text] = self.dialect.prepare(text)
        return prepared

    def execute(self, text: str, params: Mapping[str, Any]) -> Cursor:
        cursor: Cursor = self.conn.execute(self.sql(text), params)
        return cursor

    def begin(self) -> None:
        self.conn.execute(self.dialect.begin_sql, {})

    def commit(self) -> None:
        self.conn.execute("COMMIT", {})

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK", {})

    def close(self) -> None:
        self.conn.close()

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at, None for a database without the store's schema."""
        missing_table: tuple[type[Exception], ...] = (sqlite3.OperationalError, *_pg_undefined_table())
        try:
            row = self.conn.execute("SELECT version_num FROM alembic_version", {}).fetchone()
        except missing_table:
            return None
        return None if row is None else str(row[0])

    def ensure_schema(self) -> None:
        """Create or upgrade the schema unless it is at ``HEAD_REVISION`` (checked without Alembic)."""
        if self.schema_revision() != HEAD_REVISION:
            self._migrate(self)


def _pg_undefined_table() -> tuple[type[Exception], ...]:
    # Only look: a SQLite store never imports psycopg.
    psycopg = sys.modules.get("psycopg")
    return () if psycopg is None else (psycopg.errors.UndefinedTable,)


def connect(url: str | None, home: Path) -> Database:
    """Open the database at ``url`` (None: SQLite at ``home/sluice.db``) and bring its schema to head."""
    db = _open(url, home)
    try:
        db.ensure_schema()
    except BaseException:
        db.close()
        raise
    return db


def _open(url: str | None, home: Path) -> Database:
    if url is None:
        return _open_sqlite_file(home / "sluice.db")
    if url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        return _open_postgres("postgresql://" + url.split("://", 1)[1])
    if url in ("sqlite://", "sqlite:///:memory:"):
        return _open_sqlite_memory()
    if url.startswith("sqlite:///"):
        return _open_sqlite_file(Path(url.removeprefix("sqlite:///")))
    raise InvalidRequestError(
        f"Store URL '{url}' is not supported: use sqlite:///<path to file>, sqlite:///:memory: "
        "or postgresql://<user>@<host>:<port>/<database>."
    )


# --- SQLite -------------------------------------------------------------------------------------------


def _sqlite_connect(target: str, *, wal: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(
        target, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
    )
    if wal:
        _enable_wal(conn)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, retrying: the switch can report "database is locked" without waiting (SQLite
    refuses to wait there, to avoid a deadlock) while another process opens the same new file.
    WAL is persistent, so once any opener has switched, the others find it set."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_database(conn: sqlite3.Connection, path: Path | None, description: str) -> Database:
    return Database(
        conn,
        SQLITE,
        integrity_errors=(sqlite3.IntegrityError,),
        unavailable=_sqlite_unavailable,
        migrate=lambda db: _migrate_sqlite_file(path) if path else _fail_memory_migration(),
        description=description,
    )


def _open_sqlite_file(path: Path) -> Database:
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return _sqlite_database(_sqlite_connect(str(path), wal=True), path, f"sqlite:///{path}")


def _migrate_sqlite_file(path: Path) -> None:
    """Upgrade a SQLite file to head, one process at a time (a lock file next to it serialises openers)."""
    import fcntl  # migration path only

    from sluice.store.migrations import upgrade  # imports Alembic: migration path only

    lock_path = path.with_name(path.name + ".migrate-lock")
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            upgrade(_sqlite_engine(path))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _sqlite_engine(path: Path) -> Engine:
    from sqlalchemy import create_engine  # migration path only
    from sqlalchemy.pool import NullPool  # migration path only

    return create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_SECONDS),
        poolclass=NullPool,
    )


#: A migrated, empty database image: each in-memory store starts as a copy (one migration per process).
_memory_template: bytes | None = None


def _open_sqlite_memory() -> Database:
    global _memory_template  # a per-process cache of an immutable image
    if _memory_template is None:
        import tempfile  # in-memory stores only

        with tempfile.TemporaryDirectory(prefix="sluice-store-") as tmp:
            path = Path(tmp) / "template.db"
            _migrate_sqlite_file(path)
            source = sqlite3.connect(str(path))
            try:
                _memory_template = source.serialize()
            finally:
                source.close()
    conn = _sqlite_connect(":memory:", wal=False)
    conn.deserialize(_memory_template)
    conn.execute("PRAGMA foreign_keys=ON")
    return _sqlite_database(conn, None, "sqlite:///:memory:")


def _fail_memory_migration() -> None:
    raise SluiceError("The in-memory store lost its schema; this is a bug in Sluice.")


# --- PostgreSQL ---------------------------------------------------------------------------------------


def _open_postgres(conninfo: str) -> Database:
    import psycopg  # only PostgreSQL stores need the driver

    conn = psycopg.connect(conninfo, autocommit=True)
    return Database(
        conn,
        POSTGRES,
        integrity_errors=(psycopg.IntegrityError,),
        unavailable=lambda exc: isinstance(exc, psycopg.OperationalError),
        migrate=lambda db: _migrate_postgres(db, conninfo),
        description=_redact(conninfo),
    )


def _migrate_postgres(db: Database, conninfo: str) -> None:
    """Upgrade to head under an advisory lock, on a separate connection (transactional DDL)."""
    import psycopg  # only PostgreSQL stores need the driver
    from sqlalchemy import create_engine  # migration path only
    from sqlalchemy.pool import NullPool  # migration path only

    from sluice.store.migrations import upgrade  # imports Alembic: migration path only

    with _pg_lock(db, _PG_MIGRATION_LOCK):
        engine = create_engine(
            "postgresql+psycopg://", creator=lambda: psycopg.connect(conninfo), poolclass=NullPool
        )
        upgrade(engine)


@contextmanager
def _pg_lock(db: Database, key: int) -> Iterator[None]:
    db.conn.execute("SELECT pg_advisory_lock(%(key)s)", {"key": key}).fetchone()
    try:
        yield
    finally:
        db.conn.execute("SELECT pg_advisory_unlock(%(key)s)", {"key": key}).fetchone()


def _redact(conninfo: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:@/]+):[^@/]*@", r"\1:***@", conninfo)
