"""Telling a Spark Connect server about the store's catalog.

- :func:`sail_env`: the environment of a Sail server: one memory catalog per store catalog (so
  ``workspace.silver.t`` names catalog ``workspace``, schema ``silver``), ``workspace`` the default (so
  ``silver.t`` resolves in it). Sail's memory catalog forgets tables on restart, hence:
- :func:`register`: run once per Spark session: ``CREATE SCHEMA IF NOT EXISTS`` for every schema and
  ``CREATE TABLE IF NOT EXISTS c.s.t USING <format> LOCATION '<dir>'`` for every table whose data is there
  (idempotent; Sail re-reads a Delta directory's schema and versions from its ``_delta_log``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sluice.store.catalog import DEFAULT_CATALOG, CatalogStore, TableRecord


def sail_env(catalogs: list[str]) -> dict[str, str]:
    """``SAIL_CATALOG__LIST`` and ``SAIL_CATALOG__DEFAULT_CATALOG`` for the store's catalogs."""
    names = sorted({*catalogs, DEFAULT_CATALOG})
    entries = ", ".join(
        f'{{type="memory", name={json.dumps(n)}, initial_database=["default"]}}' for n in names
    )
    return {"SAIL_CATALOG__LIST": f"[{entries}]", "SAIL_CATALOG__DEFAULT_CATALOG": DEFAULT_CATALOG}


def quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def table_ident(record: TableRecord) -> str:
    return ".".join(quote(p) for p in (record.catalog_name, record.schema_name, record.table_name))


def has_data(record: TableRecord) -> bool:
    """Whether the table's directory holds a table Spark can register (Delta: a ``_delta_log``)."""
    location = Path(record.location)
    if record.data_source_format == "delta":
        return (location / "_delta_log").is_dir()
    return location.exists()


def register_table(spark: Any, record: TableRecord) -> None:
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {table_ident(record)} USING {record.data_source_format} "
        f"LOCATION {sql_string(record.location)}"
    )


def register(spark: Any, catalog: CatalogStore) -> list[str]:
    """Register the store's schemas and tables in ``spark``'s server; the tables registered."""
    known_catalogs = {str(r[0]) for r in spark.sql("SHOW CATALOGS").collect()}
    for schema in catalog.list_schemas():
        if schema.catalog_name in known_catalogs and schema.schema_name != "default":
            spark.sql(f"CREATE SCHEMA IF NOT EXISTS {quote(schema.catalog_name)}.{quote(schema.schema_name)}")
    registered = []
    for record in catalog.list_tables():
        if record.catalog_name in known_catalogs and has_data(record):
            register_table(spark, record)
            registered.append(record.full_name)
    return registered
