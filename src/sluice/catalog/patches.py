"""What Sluice changes in PySpark's Spark Connect client so that Databricks code runs as written.

Installed once per process by :func:`sluice.runtime.spark.get_spark`:

- ``DataFrameWriter.saveAsTable``: a write naming no path gets the table's location from the store (or
  its deterministic one under the warehouse), format Delta unless given; the table is recorded in the store.
- ``DataFrameReader.load`` (so ``csv``/``json``/``parquet``/``text``/``orc``) and ``DataFrameWriter.save``
  (so its format shortcuts): ``/Volumes/...``, ``dbfs:/...`` and ``file:/...`` paths become local paths.
- ``DataFrame.display()``: Databricks' method, the same as ``display(df)``.
- ``SparkSession.sql``: ``${k}`` substituted, file paths mapped and ``read_files`` calls rewritten, then
  statements Sail does not parse, or that must reach the store, answered by :mod:`sluice.catalog.sql`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sluice.store.catalog import EXTERNAL, MANAGED, CatalogStore, split_name

_installed = False
_MAPPED_PREFIXES = ("/Volumes/", "dbfs:", "file:")


def local_path(path: str) -> str:
    """The local path of ``/Volumes/...``, ``dbfs:/...`` and ``file:/...`` paths; others unchanged."""
    if not isinstance(path, str) or not path.startswith(_MAPPED_PREFIXES):
        return path
    from sluice.runtime.paths import to_local

    return str(to_local(path))


def local_read_path(path: str) -> str:
    """:func:`local_path` for a read: a DBFS or volume directory may hold no link leading outside.

    Sail lists and reads the files itself and would follow such a link: refused here, naming the link.
    """
    if not isinstance(path, str) or not path.startswith(_MAPPED_PREFIXES):
        return path
    from sluice.runtime.paths import check_tree, resolve

    resolved = resolve(path)
    check_tree(resolved)
    return str(resolved.local)


def _local_paths(path: Any, *, read: bool = False) -> Any:
    mapped = local_read_path if read else local_path
    if isinstance(path, str):
        return mapped(path)
    if isinstance(path, list | tuple):
        return [mapped(p) for p in path]
    return path


def current_namespace(session: Any) -> tuple[str, str]:
    """The session's current catalog and schema (two RPCs)."""
    return str(session.catalog.currentCatalog()), str(session.catalog.currentDatabase())


def resolve_table(session: Any, name: str) -> tuple[str, str, str]:
    """``catalog.schema.table`` of ``name`` in ``session`` (two- and one-part names use the current ones)."""
    if name.count(".") >= 2:
        return split_name(name)
    catalog, schema = current_namespace(session)
    return split_name(name, catalog=catalog, schema=schema)


def ensure_schema(session: Any, catalog: CatalogStore, c: str, s: str) -> None:
    """The schema exists in the store and in the session's server."""
    if not catalog.schema_exists(c, s):
        catalog.create_schema(c, s, int(time.time() * 1000))
    if s != "default":
        session.sql(f"CREATE SCHEMA IF NOT EXISTS `{c}`.`{s}`")


def install(catalog_factory: Callable[[], CatalogStore]) -> None:
    """Patch the Spark Connect client classes (idempotent)."""
    global _installed  # the classes are patched once per process
    if _installed:
        return
    from pyspark.sql.connect.dataframe import DataFrame
    from pyspark.sql.connect.readwriter import DataFrameReader, DataFrameWriter
    from pyspark.sql.connect.session import SparkSession

    from sluice.catalog import sql as catalog_sql

    original_load = DataFrameReader.load
    original_save = DataFrameWriter.save
    original_save_as_table = DataFrameWriter.saveAsTable
    original_sql = SparkSession.sql

    def load(self: Any, path: Any = None, format: Any = None, schema: Any = None, **options: Any) -> Any:
        return original_load(self, _local_paths(path, read=True), format, schema, **options)

    def save(
        self: Any,
        path: Any = None,
        format: Any = None,
        mode: Any = None,
        partitionBy: Any = None,
        **options: Any,
    ) -> None:
        original_save(self, _local_paths(path), format, mode, partitionBy, **options)

    def save_as_table(
        self: Any,
        name: str,
        format: Any = None,
        mode: Any = None,
        partitionBy: Any = None,
        **options: Any,
    ) -> None:
        _save_as_table(
            self, catalog_factory(), original_save_as_table, name, format, mode, partitionBy, options
        )

    def sql(self: Any, sqlQuery: str, args: Any = None, **kwargs: Any) -> Any:
        catalog = catalog_factory()
        text = catalog_sql.prepare(self, sqlQuery, catalog)
        answer = catalog_sql.intercept(self, text, catalog, original_sql)
        if answer is not None:
            return answer
        return original_sql(self, text, args, **kwargs)

    def display(self: Any, *args: Any, **kwargs: Any) -> None:
        from sluice.runtime.display import display as show

        show(self, *args, **kwargs)

    DataFrame.display = display  # type: ignore[attr-defined]  # Databricks' df.display()
    DataFrameReader.load = load  # type: ignore[method-assign]
    DataFrameWriter.save = save  # type: ignore[method-assign]
    DataFrameWriter.saveAsTable = save_as_table  # type: ignore[method-assign]
    SparkSession.sql = sql  # type: ignore[method-assign]
    _installed = True


def _save_as_table(
    writer: Any,
    catalog: CatalogStore,
    original: Callable[..., None],
    name: str,
    format: str | None,
    mode: str | None,
    partition_by: Any,
    options: dict[str, Any],
) -> None:
    session = writer._spark
    c, s, t = resolve_table(session, name)
    ensure_schema(session, catalog, c, s)
    fmt = str(format or writer._write.source or "delta").lower()
    given = options.pop("path", None) or writer._write.options.get("path")
    if given:
        location, table_type = local_path(str(given)), EXTERNAL
    else:
        record = catalog.get_table(c, s, t)
        location = record.location if record else str(catalog.table_location(c, s, t))
        table_type = record.table_type if record else MANAGED
    writer._write.options["path"] = location
    original(writer, f"`{c}`.`{s}`.`{t}`", format=fmt, mode=mode, partitionBy=partition_by, **options)
    catalog.put_table(
        c, s, t, location=location, now=int(time.time() * 1000), data_source_format=fmt, table_type=table_type
    )
