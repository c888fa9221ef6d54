"""The lakehouse catalog in the store: catalogs, schemas, tables (with their locations) and volumes.

The store owns the catalog (DESIGN decision 6): Spark sessions are told about it when they start
(``sluice.catalog.session``), and tables written without a path get a deterministic location under
``SLUICE_HOME/warehouse/<catalog>/<schema>/<table>``; volumes are ``SLUICE_HOME/volumes/<c>/<s>/<v>``, the
directories ``/Volumes/<c>/<s>/<v>`` maps to (``sluice.runtime.paths``).

Names are case-insensitive and stored lower-case. Task processes use this module too (over the same DB-API
connection as the store, ``sluice.store.db``): it imports only the standard library and that module.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sluice.errors import ConflictError, InvalidRequestError, NotFoundError
from sluice.store import db as _db

if TYPE_CHECKING:
    from sluice.store.store import Store

DEFAULT_CATALOG = "workspace"
DEFAULT_SCHEMA = "default"
WAREHOUSE_DIR = "warehouse"
VOLUMES_DIR = "volumes"
MANAGED = "MANAGED"
EXTERNAL = "EXTERNAL"
_NAME = re.compile(r"^[a-z0-9_][a-z0-9_-]{0,254}$")


def check_name(kind: str, name: str) -> str:
    """``name`` lower-cased, or InvalidRequestError naming what is wrong with it."""
    lowered = name.strip("`").lower()
    if not _NAME.match(lowered):
        raise InvalidRequestError(
            f"{kind} name '{name}' is not valid: use letters, digits, '_' and '-' (at most 255 characters)"
        )
    return lowered


def split_name(
    name: str, *, catalog: str = DEFAULT_CATALOG, schema: str = DEFAULT_SCHEMA, kind: str = "table"
) -> tuple[str, str, str]:
    """``catalog.schema.name`` of ``name`` (one, two or three parts; missing ones are the current ones)."""
    given = [p.strip().strip("`") for p in name.split(".")]
    if not 1 <= len(given) <= 3 or any(not p for p in given):
        raise InvalidRequestError(f"'{name}' is not a valid {kind} name: write <catalog>.<schema>.<{kind}>")
    full = [catalog, schema][: 3 - len(given)] + given
    return check_name("catalog", full[0]), check_name("schema", full[1]), check_name(kind, full[2])


@dataclass(frozen=True)
class SchemaRecord:
    catalog_name: str
    schema_name: str
    comment: str
    created_time: int

    @property
    def full_name(self) -> str:
        return f"{self.catalog_name}.{self.schema_name}"


@dataclass(frozen=True)
class TableRecord:
    catalog_name: str
    schema_name: str
    table_name: str
    table_type: str
    data_source_format: str
    location: str
    created_time: int
    updated_time: int

    @property
    def full_name(self) -> str:
        return f"{self.catalog_name}.{self.schema_name}.{self.table_name}"


@dataclass(frozen=True)
class VolumeRecord:
    catalog_name: str
    schema_name: str
    volume_name: str
    volume_type: str
    location: str
    comment: str
    created_time: int

    @property
    def full_name(self) -> str:
        return f"{self.catalog_name}.{self.schema_name}.{self.volume_name}"


_TABLE_COLUMNS = (
    "catalog_name, schema_name, table_name, table_type, data_source_format, location, created_time, "
    "updated_time"
)
_VOLUME_COLUMNS = "catalog_name, schema_name, volume_name, volume_type, location, comment, created_time"


class CatalogStore:
    """Catalog queries on the store's database; ``home`` locates the warehouse and the volumes."""

    def __init__(self, database: _db.Database, home: Path) -> None:
        self._db = database
        self.home = home

    @classmethod
    def open(cls, url: str | None, home: Path) -> CatalogStore:
        """Open the store's database (``url`` None: SQLite in ``home``), as ``Store.open`` does."""
        return cls(_db.connect(url, home), home)

    @classmethod
    def of(cls, store: Store, home: Path) -> CatalogStore:
        """The catalog in an open Store's database, sharing its connection (closing the Store closes it)."""
        return cls(store._db, home)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> CatalogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.begin()
        try:
            yield
        except BaseException:
            self._db.rollback()
            raise
        self._db.commit()

    def _rows(self, sql: str, **params: object) -> list[tuple[object, ...]]:
        rows: list[tuple[object, ...]] = self._db.execute(sql, params).fetchall()
        return rows

    # -- locations ------------------------------------------------------------------------------------

    def table_location(self, catalog: str, schema: str, table: str) -> Path:
        """Where a table without a user-given path lives."""
        return self.home / WAREHOUSE_DIR / catalog / schema / table

    def volume_location(self, catalog: str, schema: str, volume: str) -> Path:
        return self.home / VOLUMES_DIR / catalog / schema / volume

    # -- catalogs and schemas -------------------------------------------------------------------------

    def list_catalogs(self) -> list[str]:
        return [str(r[0]) for r in self._rows("SELECT name FROM catalogs ORDER BY name")]

    def create_catalog(self, name: str, now: int, *, if_not_exists: bool = True, comment: str = "") -> bool:
        """Create catalog ``name`` with its schema ``default``; False when it existed and that is allowed."""
        name = check_name("catalog", name)
        with self._transaction():
            if self._rows("SELECT name FROM catalogs WHERE name = :n", n=name):
                if if_not_exists:
                    return False
                raise ConflictError(f"catalog '{name}' already exists")
            self._db.execute(
                "INSERT INTO catalogs (name, comment, created_time) VALUES (:n, :c, :t)",
                {"n": name, "c": comment, "t": now},
            )
            self._insert_schema(name, DEFAULT_SCHEMA, now, "")
        return True

    def _insert_schema(self, catalog: str, schema: str, now: int, comment: str) -> None:
        self._db.execute(
            "INSERT INTO catalog_schemas (catalog_name, schema_name, comment, created_time) "
            "VALUES (:c, :s, :m, :t)",
            {"c": catalog, "s": schema, "m": comment, "t": now},
        )

    def list_schemas(self, catalog: str | None = None) -> list[SchemaRecord]:
        sql = "SELECT catalog_name, schema_name, comment, created_time FROM catalog_schemas"
        if catalog is None:
            rows = self._rows(sql + " ORDER BY catalog_name, schema_name")
        else:
            rows = self._rows(sql + " WHERE catalog_name = :c ORDER BY schema_name", c=catalog.lower())
        return [SchemaRecord(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]  # type: ignore[call-overload]

    def schema_exists(self, catalog: str, schema: str) -> bool:
        return bool(
            self._rows(
                "SELECT 1 FROM catalog_schemas WHERE catalog_name = :c AND schema_name = :s",
                c=catalog.lower(),
                s=schema.lower(),
            )
        )

    def create_schema(
        self, catalog: str, schema: str, now: int, *, if_not_exists: bool = True, comment: str = ""
    ) -> bool:
        """Create ``catalog.schema``; the catalog must exist. False when it existed (and that is allowed)."""
        catalog, schema = check_name("catalog", catalog), check_name("schema", schema)
        with self._transaction():
            if not self._rows("SELECT name FROM catalogs WHERE name = :n", n=catalog):
                raise NotFoundError(
                    f"catalog '{catalog}' does not exist; create it with `sluice catalog create {catalog}` "
                    f"(or CREATE CATALOG {catalog})"
                )
            if self.schema_exists(catalog, schema):
                if if_not_exists:
                    return False
                raise ConflictError(f"schema '{catalog}.{schema}' already exists")
            self._insert_schema(catalog, schema, now, comment)
        return True

    def _require_schema(self, catalog: str, schema: str) -> None:
        if not self.schema_exists(catalog, schema):
            raise NotFoundError(
                f"schema '{catalog}.{schema}' does not exist; create it with CREATE SCHEMA {catalog}.{schema}"
            )

    # -- tables ---------------------------------------------------------------------------------------

    def get_table(self, catalog: str, schema: str, table: str) -> TableRecord | None:
        rows = self._rows(
            f"SELECT {_TABLE_COLUMNS} FROM catalog_tables "  # noqa: S608 - constant column list
            "WHERE catalog_name = :c AND schema_name = :s AND table_name = :t",
            c=catalog.lower(),
            s=schema.lower(),
            t=table.lower(),
        )
        return TableRecord(*rows[0]) if rows else None  # type: ignore[arg-type]

    def list_tables(self, catalog: str | None = None, schema: str | None = None) -> list[TableRecord]:
        rows = self._rows(
            f"SELECT {_TABLE_COLUMNS} FROM catalog_tables "  # noqa: S608 - constant column list
            "WHERE (:c = '' OR catalog_name = :c) AND (:s = '' OR schema_name = :s) "
            "ORDER BY catalog_name, schema_name, table_name",
            c=(catalog or "").lower(),
            s=(schema or "").lower(),
        )
        return [TableRecord(*r) for r in rows]  # type: ignore[arg-type]

    def put_table(
        self,
        catalog: str,
        schema: str,
        table: str,
        *,
        location: str,
        now: int,
        data_source_format: str = "delta",
        table_type: str = MANAGED,
    ) -> TableRecord:
        """Record a table (creating its schema if needed), or touch ``updated_time`` of a known one."""
        catalog, schema = check_name("catalog", catalog), check_name("schema", schema)
        table = check_name("table", table)
        with self._transaction():
            if not self._rows("SELECT name FROM catalogs WHERE name = :n", n=catalog):
                raise NotFoundError(
                    f"catalog '{catalog}' does not exist; create it with `sluice catalog create {catalog}`"
                )
            if not self.schema_exists(catalog, schema):
                self._insert_schema(catalog, schema, now, "")
            updated = self._db.execute(
                "UPDATE catalog_tables SET updated_time = :now, location = :loc, data_source_format = :f, "
                "table_type = :tt WHERE catalog_name = :c AND schema_name = :s AND table_name = :t",
                {
                    "now": now,
                    "loc": location,
                    "f": data_source_format,
                    "tt": table_type,
                    "c": catalog,
                    "s": schema,
                    "t": table,
                },
            ).rowcount
            if not updated:
                self._db.execute(
                    f"INSERT INTO catalog_tables ({_TABLE_COLUMNS}) "  # noqa: S608 - constant column list
                    "VALUES (:c, :s, :t, :tt, :f, :loc, :now, :now)",
                    {
                        "now": now,
                        "loc": location,
                        "f": data_source_format,
                        "tt": table_type,
                        "c": catalog,
                        "s": schema,
                        "t": table,
                    },
                )
        record = self.get_table(catalog, schema, table)
        assert record is not None
        return record

    def drop_table(
        self, catalog: str, schema: str, table: str, *, delete_data: bool = True
    ) -> TableRecord | None:
        """Forget a table; a managed table's directory is deleted too. The record, None if unknown."""
        record = self.get_table(catalog, schema, table)
        if record is None:
            return None
        self._db.execute(
            "DELETE FROM catalog_tables WHERE catalog_name = :c AND schema_name = :s AND table_name = :t",
            {"c": record.catalog_name, "s": record.schema_name, "t": record.table_name},
        )
        if delete_data and record.table_type == MANAGED:
            shutil.rmtree(record.location, ignore_errors=True)
        return record

    # -- volumes --------------------------------------------------------------------------------------

    def create_volume(
        self,
        catalog: str,
        schema: str,
        volume: str,
        now: int,
        *,
        if_not_exists: bool = True,
        comment: str = "",
    ) -> tuple[VolumeRecord, bool]:
        """Create a managed volume and its directory; ``(record, created)``."""
        catalog, schema = check_name("catalog", catalog), check_name("schema", schema)
        volume = check_name("volume", volume)
        self._require_schema(catalog, schema)
        existing = self.get_volume(catalog, schema, volume)
        if existing is not None:
            if not if_not_exists:
                raise ConflictError(f"volume '{existing.full_name}' already exists")
            Path(existing.location).mkdir(parents=True, exist_ok=True)
            return existing, False
        location = self.volume_location(catalog, schema, volume)
        location.mkdir(parents=True, exist_ok=True)
        try:
            self._db.execute(
                f"INSERT INTO catalog_volumes ({_VOLUME_COLUMNS}) "  # noqa: S608 - constant column list
                "VALUES (:c, :s, :v, 'MANAGED', :loc, :m, :now)",
                {"c": catalog, "s": schema, "v": volume, "loc": str(location), "m": comment, "now": now},
            )
        except self._db.integrity_errors:
            if not if_not_exists:
                raise ConflictError(f"volume '{catalog}.{schema}.{volume}' already exists") from None
        record = self.get_volume(catalog, schema, volume)
        assert record is not None
        return record, True

    def get_volume(self, catalog: str, schema: str, volume: str) -> VolumeRecord | None:
        rows = self._rows(
            f"SELECT {_VOLUME_COLUMNS} FROM catalog_volumes "  # noqa: S608 - constant column list
            "WHERE catalog_name = :c AND schema_name = :s AND volume_name = :v",
            c=catalog.lower(),
            s=schema.lower(),
            v=volume.lower(),
        )
        return VolumeRecord(*rows[0]) if rows else None  # type: ignore[arg-type]

    def list_volumes(self, catalog: str | None = None, schema: str | None = None) -> list[VolumeRecord]:
        rows = self._rows(
            f"SELECT {_VOLUME_COLUMNS} FROM catalog_volumes "  # noqa: S608 - constant column list
            "WHERE (:c = '' OR catalog_name = :c) AND (:s = '' OR schema_name = :s) "
            "ORDER BY catalog_name, schema_name, volume_name",
            c=(catalog or "").lower(),
            s=(schema or "").lower(),
        )
        return [VolumeRecord(*r) for r in rows]  # type: ignore[arg-type]

    def volume_exists(self, catalog: str, schema: str, volume: str) -> bool:
        """Whether ``/Volumes/<catalog>/<schema>/<volume>`` exists (for ``sluice.runtime.paths``)."""
        return self.get_volume(catalog, schema, volume) is not None

    # -- SQL functions --------------------------------------------------------------------------------

    def put_function(self, catalog: str, schema: str, name: str, definition: str, now: int) -> None:
        """Record (or replace) a SQL function's definition (JSON); its schema must exist."""
        catalog, schema = check_name("catalog", catalog), check_name("schema", schema)
        name = check_name("function", name)
        self._require_schema(catalog, schema)
        with self._transaction():
            self._db.execute(
                "DELETE FROM catalog_functions "
                "WHERE catalog_name = :c AND schema_name = :s AND function_name = :f",
                {"c": catalog, "s": schema, "f": name},
            )
            self._db.execute(
                "INSERT INTO catalog_functions (catalog_name, schema_name, function_name, definition, "
                "created_time) VALUES (:c, :s, :f, :d, :now)",
                {"c": catalog, "s": schema, "f": name, "d": definition, "now": now},
            )

    def list_functions(self) -> list[tuple[str, str, str, str]]:
        """``(catalog, schema, name, definition)`` of every SQL function."""
        rows = self._rows(
            "SELECT catalog_name, schema_name, function_name, definition FROM catalog_functions "
            "ORDER BY catalog_name, schema_name, function_name"
        )
        return [(str(c), str(s), str(f), str(d)) for c, s, f, d in rows]

    def drop_function(self, catalog: str, schema: str, name: str) -> bool:
        """Forget a SQL function; whether it existed."""
        return bool(
            self._db.execute(
                "DELETE FROM catalog_functions "
                "WHERE catalog_name = :c AND schema_name = :s AND function_name = :f",
                {"c": catalog.lower(), "s": schema.lower(), "f": name.lower()},
            ).rowcount
        )
