"""``sluice destinations ...``: webhook targets (Slack, generic) that job settings name by id, and the
notification outbox (what was sent where, what failed and why)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from sluice.cli.common import Output, errors_to_exit_codes, load_settings, open_store, print_json, print_table

app = typer.Typer(
    help="Notification destinations (Slack and generic webhooks) and the deliveries made to them.",
    no_args_is_help=True,
)

OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="table (default) or json.")]


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") if ms else ""


@app.command("create")
def create(
    type: Annotated[str, typer.Option("--type", help="slack (incoming webhook) or webhook (generic JSON).")],
    url: Annotated[str, typer.Option("--url", help="The URL notifications are POSTed to.")],
    name: Annotated[str | None, typer.Option("--name", help="A display name.")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Create a destination and print its id (for ``webhook_notifications.<event>: [{id: ID}]``)."""
    from sluice.engine.clock import now_ms
    from sluice.notify.destinations import create as create_destination

    with errors_to_exit_codes():
        store = open_store(load_settings())
        try:
            dest = create_destination(store, type=type, url=url, name=name, now=now_ms())
        finally:
            store.close()
    if output is Output.json:
        print_json(
            {"id": dest.destination_id, "display_name": dest.display_name, "destination_type": dest.type}
        )
        return
    typer.echo(dest.destination_id)


@app.command("list")
def list_destinations(output: OutputOpt = Output.table) -> None:
    """List destinations (URLs shortened to their host: webhook URLs are secrets)."""
    from sluice.notify.webhooks import redacted
    from sluice.store.notifications import list_destinations as query

    with errors_to_exit_codes():
        store = open_store(load_settings())
        try:
            found = query(store)
        finally:
            store.close()
    if output is Output.json:
        print_json(
            {
                "results": [
                    {
                        "id": d.destination_id,
                        "display_name": d.display_name,
                        "destination_type": d.type,
                        "url": redacted(d.url),
                        "created_time": d.created_time,
                    }
                    for d in found
                ]
            }
        )
        return
    print_table(
        ["id", "name", "type", "url", "created"],
        [(d.destination_id, d.display_name, d.type, redacted(d.url), _time(d.created_time)) for d in found],
    )


@app.command("delete")
def delete(destination_id: Annotated[str, typer.Argument(help="The destination's id.")]) -> None:
    """Delete a destination (notifications still pending for it fail, naming it)."""
    from sluice.store.notifications import delete_destination

    with errors_to_exit_codes():
        store = open_store(load_settings())
        try:
            delete_destination(store, destination_id)
        finally:
            store.close()
    typer.echo(f"Deleted destination {destination_id}")


@app.command("deliveries")
def deliveries(
    run: Annotated[int | None, typer.Option("--run", help="Only notifications of this job run.")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Show the notification outbox: each notification, its state, attempts and last error."""
    from sluice.store.notifications import list_attempts, list_notifications

    with errors_to_exit_codes():
        store = open_store(load_settings())
        try:
            notes = list_notifications(store, job_run_id=run)
            attempts = {n.notification_key: list_attempts(store, n.notification_key) for n in notes}
        finally:
            store.close()
    if output is Output.json:
        print_json(
            [
                {
                    "key": n.notification_key,
                    "job_run_id": n.job_run_id,
                    "task_run_id": n.task_run_id,
                    "event": n.event,
                    "channel": n.channel,
                    "destination": n.destination,
                    "state": n.state,
                    "attempts": [
                        {
                            "attempt": a.attempt_number,
                            "start_time": a.start_time,
                            "end_time": a.end_time,
                            "ok": a.ok,
                            "error": a.error,
                        }
                        for a in attempts[n.notification_key]
                    ],
                    "last_error": n.last_error,
                }
                for n in notes
            ]
        )
        return
    print_table(
        ["run", "task", "event", "to", "state", "attempts", "last error"],
        [
            (
                n.job_run_id,
                n.facts.get("task_key", ""),
                n.event,
                n.destination,
                n.state,
                n.attempts,
                (n.last_error or "")[:80],
            )
            for n in notes
        ],
    )
