"""``sluice tokens ...``: API tokens of ``sluice serve`` (create, list, revoke)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from sluice.cli.common import Output, errors_to_exit_codes, load_settings, open_store, print_json, print_table

app = typer.Typer(help="Create, list and revoke API tokens of `sluice serve`.", no_args_is_help=True)


def _when(ms: int) -> str:
    if ms < 0:
        return "never"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@app.command("create")
def create(
    comment: Annotated[str, typer.Option(help="What the token is for (shown by `tokens list`).")],
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            help="The user the token acts as: creator_user_name of what it creates, current_user.me() "
            "(default: you, the local user).",
        ),
    ] = None,
    lifetime_seconds: Annotated[
        int | None, typer.Option(min=1, help="Seconds until it expires (default: never).")
    ] = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="table (default) or json.")] = Output.table,
) -> None:
    """Create a token. Its value is printed once and never stored: keep it."""
    from sluice.engine.clock import now_ms
    from sluice.identity import local_user
    from sluice.store.tokens import create_token

    with errors_to_exit_codes():
        store = open_store(load_settings())
        try:
            value, info = create_token(
                store,
                comment=comment,
                now=now_ms(),
                user_name=local_user() if user is None else user,
                lifetime_seconds=lifetime_seconds,
            )
        finally:
            store.close()
    if output is Output.json:
        print_json({"token_value": value, "token_info": info.json()})
        return
    typer.echo(value)
    typer.echo(
        f"Token {info.token_id} ('{comment}') acting as {info.user_name}, expires {_when(info.expiry_time)}. "
        "This value is shown once: store it now.",
        err=True,
    )


@app.command("list")
def list_tokens(
    output: Annotated[Output, typer.Option("--output", "-o", help="table (default) or json.")] = Output.table,
) -> None:
    """List tokens that are not revoked (never their values)."""
    from sluice.store.tokens import list_tokens as query

    with errors_to_exit_codes():
        store = open_store(load_settings())
        try:
            tokens = query(store)
        finally:
            store.close()
    if output is Output.json:
        print_json({"token_infos": [t.json() for t in tokens]})
        return
    print_table(
        ["token_id", "user", "comment", "created", "expires"],
        [(t.token_id, t.user_name, t.comment, _when(t.creation_time), _when(t.expiry_time)) for t in tokens],
    )


@app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (from `sluice tokens list`).")],
) -> None:
    """Revoke a token: requests bearing it are refused from now on."""
    from sluice.engine.clock import now_ms
    from sluice.store.tokens import revoke_token

    with errors_to_exit_codes():
        store = open_store(load_settings())
        try:
            revoke_token(store, token_id, now=now_ms())
        finally:
            store.close()
    typer.echo(f"Token {token_id} revoked.")
