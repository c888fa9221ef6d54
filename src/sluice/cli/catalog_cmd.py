"""``sluice catalog ...``: the store-owned catalog: catalogs, schemas, tables, volumes, table details."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sluice.cli.common import Output, errors_to_exit_codes, fail, load_settings, print_json, print_table

if TYPE_CHECKING:
    from sluice.store.catalog import CatalogStore

app = typer.Typer(help="List and describe catalogs, schemas, tables and volumes.", no_args_is_help=True)

OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="table (default) or json.")]


@contextmanager
def _catalog() -> Iterator[CatalogStore]:
    from sluice.store.catalog import CatalogStore

    with errors_to_exit_codes():
        settings = load_settings()
        store = CatalogStore.open(settings.database_url, settings.home)
        try:
            yield store
        finally:
            store.close()


def _time(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@app.command("create")
def create(name: Annotated[str, typer.Argument(help="Catalog name.")]) -> None:
    """Create a catalog (with its schema `default`); Spark sessions started afterwards see it."""
    from sluice.engine.clock import now_ms

    with _catalog() as catalog:
        created = catalog.create_catalog(name, now_ms())
    typer.echo(f"Catalog {name.lower()} {'created' if created else 'already exists'}")


@app.command("list")
def list_(
    name: Annotated[
        str | None, typer.Argument(help="A catalog (its schemas) or catalog.schema (its tables and volumes).")
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """List catalogs, a catalog's schemas, or a schema's tables and volumes."""
    parts = name.lower().split(".") if name else []
    with _catalog() as catalog:
        if not parts:
            rows: list[dict[str, Any]] = [
                {"name": c, "schemas": len(catalog.list_schemas(c))} for c in catalog.list_catalogs()
            ]
        elif len(parts) == 1:
            if parts[0] not in catalog.list_catalogs():
                fail(f"catalog '{parts[0]}' does not exist; see `sluice catalog list`", 2)
            rows = [
                {"name": s.full_name, "type": "SCHEMA", "created": _time(s.created_time)}
                for s in catalog.list_schemas(parts[0])
            ]
        else:
            if not catalog.schema_exists(parts[0], parts[1]):
                fail(f"schema '{name}' does not exist; see `sluice catalog list {parts[0]}`", 2)
            rows = [
                {
                    "name": t.full_name,
                    "type": f"TABLE ({t.table_type}, {t.data_source_format})",
                    "location": t.location,
                }
                for t in catalog.list_tables(parts[0], parts[1])
            ] + [
                {
                    "name": v.full_name,
                    "type": "VOLUME",
                    "location": f"/Volumes/{v.full_name.replace('.', '/')}",
                }
                for v in catalog.list_volumes(parts[0], parts[1])
            ]
    if output is Output.json:
        print_json({"items": rows})
        return
    columns = list(rows[0]) if rows else ["name"]
    print_table([c.upper() for c in columns], [[r.get(c, "") for c in columns] for r in rows])


@app.command("describe")
def describe(
    name: Annotated[str, typer.Argument(help="catalog.schema.table (two parts: in catalog workspace).")],
    output: OutputOpt = Output.table,
    history: Annotated[int, typer.Option(help="How many recent versions to show.")] = 10,
) -> None:
    """A table's location, format, columns and history (read from its Delta log)."""
    from sluice.store.catalog import split_name

    with _catalog() as catalog:
        c, s, t = split_name(name)
        record = catalog.get_table(c, s, t)
        if record is None:
            fail(f"table '{c}.{s}.{t}' is not in the catalog; see `sluice catalog list {c}.{s}`", 2)
    detail = _details(record.location, record.data_source_format, history)
    doc = {
        "full_name": record.full_name,
        "table_type": record.table_type,
        "data_source_format": record.data_source_format,
        "storage_location": record.location,
        "created_at": record.created_time,
        "updated_at": record.updated_time,
        **detail,
    }
    if output is Output.json:
        print_json(doc)
        return
    for key in ("full_name", "table_type", "data_source_format", "storage_location"):
        typer.echo(f"{key + ':':<20}{doc[key]}")
    typer.echo(f"{'created_at:':<20}{_time(record.created_time)}")
    typer.echo(f"{'updated_at:':<20}{_time(record.updated_time)}")
    if "error" in detail:
        typer.echo(f"{'note:':<20}{detail['error']}")
        return
    print_table(
        ["COLUMN", "TYPE", "NULLABLE"], [[c["name"], c["type"], c["nullable"]] for c in detail["columns"]]
    )
    print_table(
        ["VERSION", "TIMESTAMP", "OPERATION"],
        [[h["version"], str(h["timestamp"]), h["operation"]] for h in detail["history"]],
        title="History",
    )


def _details(location: str, fmt: str, limit: int) -> dict[str, Any]:
    if fmt != "delta":
        return {"error": f"columns and history are shown for Delta tables; this one is {fmt}"}
    from sluice.catalog.tables import columns, history

    try:
        cols = columns(location)
        hist = history(location, limit=limit)
    except Exception as exc:
        return {"error": f"cannot read the Delta table at {location}: {exc}"}
    return {
        "columns": [{"name": n, "type": ty, "nullable": nl} for n, ty, nl in cols],
        "history": [{**h, "timestamp": str(h["timestamp"])} for h in hist],
    }
