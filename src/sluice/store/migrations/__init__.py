"""Alembic migrations of the store, configured in code (no alembic.ini).

Importing this module imports Alembic and SQLAlchemy: only ``sluice.store.db`` does, and only when a
database is not at ``HEAD_REVISION``. To write a migration: change ``sluice.store.schema``, then

    python -c "from sluice.store.migrations import revision; revision('<what changes>', '<url>')"

review the generated file in ``versions/``, give it the next number and set ``db.HEAD_REVISION`` to it.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine

from sluice.errors import SluiceError

MIGRATIONS_DIR = Path(__file__).resolve().parent


def config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the store's migrations; ``connection`` is what env.py migrates."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision id, as Alembic sees the versions directory."""
    head = ScriptDirectory.from_config(config()).get_current_head()
    if head is None:
        raise SluiceError(
            f"No migrations found in {MIGRATIONS_DIR / 'versions'}; the installation is broken."
        )
    return str(head)


def upgrade(engine: Engine) -> None:
    """Bring the database behind ``engine`` to the head revision in one transaction, then dispose of it."""
    try:
        with engine.begin() as connection:
            command.upgrade(config(connection), "head")
    except CommandError as exc:
        raise SluiceError(
            f"Cannot upgrade the store's schema: {exc}. A database written by a newer Sluice needs that "
            "newer Sluice (or a fresh store)."
        ) from exc
    finally:
        engine.dispose()


def revision(message: str, url: str) -> None:
    """Autogenerate a migration from the difference between ``url``'s database and the schema."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            command.revision(config(connection), message=message, autogenerate=True)
    finally:
        engine.dispose()
