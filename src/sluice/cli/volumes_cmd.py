"""``sluice volumes ...``: Unity Catalog volumes, the directories behind ``/Volumes/<c>/<s>/<v>/...``."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.common import Output, errors_to_exit_codes, load_settings, print_json, print_table

app = typer.Typer(
    help="Create and list volumes (/Volumes/<catalog>/<schema>/<volume>).", no_args_is_help=True
)

OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="table (default) or json.")]


def _now() -> int:
    from sluice.engine.clock import now_ms

    return now_ms()


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="catalog.schema.volume")],
    comment: Annotated[str, typer.Option(help="A comment for the volume.")] = "",
    create_schema: Annotated[bool, typer.Option(help="Create the schema too if it does not exist.")] = True,
) -> None:
    """Create a volume (and its directory); an existing one is left as it is."""
    from sluice.store.catalog import CatalogStore, split_name

    with errors_to_exit_codes():
        settings = load_settings()
        c, s, v = split_name(name, kind="volume")
        if name.count(".") != 2:
            typer.echo(f"Error: '{name}' is not a volume name: write <catalog>.<schema>.<volume>", err=True)
            raise typer.Exit(2)
        with CatalogStore.open(settings.database_url, settings.home) as catalog:
            if create_schema:
                catalog.create_schema(c, s, _now(), if_not_exists=True)
            record, created = catalog.create_volume(c, s, v, _now(), comment=comment)
    verb = "created" if created else "already exists"
    typer.echo(f"Volume {record.full_name} {verb}: /Volumes/{c}/{s}/{v} is {record.location}")


@app.command("list")
def list_(
    schema: Annotated[str | None, typer.Argument(help="catalog or catalog.schema to list.")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """List volumes."""
    from sluice.store.catalog import CatalogStore

    parts = (schema or "").split(".") if schema else []
    with errors_to_exit_codes():
        settings = load_settings()
        with CatalogStore.open(settings.database_url, settings.home) as catalog:
            volumes = catalog.list_volumes(*[*parts, None, None][:2])
    rows = [
        {
            "full_name": v.full_name,
            "volume_type": v.volume_type,
            "storage_location": v.location,
            "comment": v.comment,
        }
        for v in volumes
    ]
    if output is Output.json:
        print_json({"volumes": rows})
        return
    print_table(
        ["NAME", "TYPE", "LOCATION"],
        [[r["full_name"], r["volume_type"], r["storage_location"]] for r in rows],
    )
