"""``sluice clusters ...``: all-purpose clusters, long-lived Spark Connect servers tasks reach by name.

A task with ``existing_cluster_id: NAME`` sends its Spark work to the cluster ``NAME``; without it a run
starts its own job cluster (``docs/guide/compute.md``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from sluice.cli.common import Output, errors_to_exit_codes, load_settings, print_json, print_table

app = typer.Typer(
    help="Start, stop and list all-purpose clusters (Spark Connect servers).", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="Cluster name (tasks use it as existing_cluster_id).")]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="table (default) or json.")]


@app.command("start")
def start(
    name: NameArg,
    engine: Annotated[
        str, typer.Option(help="sail (embedded, default) or spark (Apache Spark, Java 17+).")
    ] = "sail",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 0,
) -> None:
    """Start a named cluster that runs until `sluice clusters stop NAME`."""
    from sluice.catalog.session import sail_env
    from sluice.compute.clusters import start_cluster
    from sluice.store.catalog import CatalogStore

    with errors_to_exit_codes():
        settings = load_settings()
        with CatalogStore.open(settings.database_url, settings.home) as catalog:
            env = sail_env(catalog.list_catalogs())
        info = start_cluster(settings.home, name, engine=engine, port=port, env=env)
    typer.echo(
        f"Cluster {name} ({info.engine}) is running at {info.endpoint} (pid {info.pid}, log {info.log})"
    )


@app.command("stop")
def stop(name: NameArg) -> None:
    """Stop a named cluster."""
    from sluice.compute.clusters import stop_cluster

    with errors_to_exit_codes():
        stop_cluster(load_settings().home, name)
    typer.echo(f"Cluster {name} stopped")


@app.command("list")
def list_(output: OutputOpt = Output.table) -> None:
    """List the running clusters."""
    from sluice.compute.clusters import cluster_name, list_clusters

    with errors_to_exit_codes():
        infos = list_clusters(load_settings().home)
    rows = [
        {
            "cluster_name": cluster_name(i),
            "engine": i.engine,
            "endpoint": i.endpoint,
            "pid": i.pid,
            "started": datetime.fromtimestamp(i.started, UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "log": i.log,
        }
        for i in infos
    ]
    if output is Output.json:
        print_json({"clusters": rows})
        return
    columns = ["cluster_name", "engine", "endpoint", "pid", "started"]
    print_table([c.upper() for c in columns], [[r[c] for c in columns] for r in rows])
