"""``sluice secrets ...``: secret scopes and secrets for ``dbutils.secrets``, stored encrypted in the store.

Command names and shapes follow the Databricks CLI's ``secrets`` group (v0.205+: ``create-scope SCOPE``,
``put-secret SCOPE KEY [--string-value V | --bytes-value V]``, ``list-secrets SCOPE``, ``list-scopes``,
``delete-secret SCOPE KEY``, ``delete-scope SCOPE``), plus ``--from-file``. Short forms ``put``, ``list``
and ``delete`` are accepted too. Values are never printed.
"""

from __future__ import annotations

import base64
import binascii
import sys
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sluice.cli.common import EXIT_INVALID, Output, errors_to_exit_codes, fail, load_settings, print_json

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sluice.store.secrets import SecretStore

app = typer.Typer(
    help="Manage secret scopes and secrets (read in tasks with dbutils.secrets.get).", no_args_is_help=True
)

OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="table (default) or json.")]
ScopeArg = Annotated[str, typer.Argument(help="Scope name: letters, digits, '-', '_', '.'.")]
KeyArg = Annotated[str, typer.Argument(help="Secret key: letters, digits, '-', '_', '.'.")]


@contextmanager
def _store() -> Iterator[SecretStore]:
    from sluice.store.secrets import SecretsKeyError, SecretStore

    with errors_to_exit_codes():
        settings = load_settings()
        store = SecretStore.open(settings.database_url, settings.home)
        try:
            yield store
        except SecretsKeyError as exc:
            fail(str(exc))
        finally:
            store.close()


def _now() -> int:
    from sluice.engine.clock import now_ms

    return now_ms()


@app.command("create-scope")
def create_scope(scope: ScopeArg) -> None:
    """Create a secret scope."""
    with _store() as store:
        store.create_scope(scope, _now())
    typer.echo(f"Scope {scope} created")


@app.command("delete-scope")
def delete_scope(scope: ScopeArg) -> None:
    """Delete a secret scope and every secret in it."""
    with _store() as store:
        store.delete_scope(scope)
    typer.echo(f"Scope {scope} deleted")


@app.command("list-scopes")
def list_scopes(output: OutputOpt = Output.table) -> None:
    """List the secret scopes."""
    with _store() as store:
        scopes = store.list_scopes()
    if output is Output.json:
        print_json({"scopes": [{"name": s.name, "backend_type": "DATABRICKS"} for s in scopes]})
        return
    from sluice.cli.common import print_table

    print_table(["scope", "created"], [(s.name, _time(s.created_time)) for s in scopes])


def _value(string_value: str | None, bytes_value: str | None, from_file: Path | None) -> bytes:
    given = [v for v in (string_value, bytes_value, from_file) if v is not None]
    if len(given) > 1:
        fail("give at most one of --string-value, --bytes-value and --from-file", EXIT_INVALID)
    if string_value is not None:
        return string_value.encode("utf-8")
    if bytes_value is not None:
        try:
            return base64.b64decode(bytes_value, validate=True)
        except binascii.Error:
            fail("--bytes-value must be base64 (as in the Databricks CLI)", EXIT_INVALID)
    if from_file is not None:
        try:
            return from_file.read_bytes()
        except OSError as exc:
            fail(f"cannot read --from-file {from_file}: {exc.strerror}", EXIT_INVALID)
    if sys.stdin.isatty():
        text: str = typer.prompt("Secret value", hide_input=True, confirmation_prompt=True)
        return text.encode("utf-8")
    data = sys.stdin.buffer.read()
    # `echo value | sluice secrets put-secret ...` ends with a newline that is not part of the value.
    return data[:-2] if data.endswith(b"\r\n") else data[:-1] if data.endswith(b"\n") else data


@app.command("put-secret")
def put_secret(
    scope: ScopeArg,
    key: KeyArg,
    string_value: Annotated[
        str | None,
        typer.Option("--string-value", "--value", help="The value, as text (visible in shell history)."),
    ] = None,
    bytes_value: Annotated[
        str | None, typer.Option("--bytes-value", help="The value as base64 bytes.")
    ] = None,
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="Read the value from this file, byte for byte.")
    ] = None,
) -> None:
    """Create or replace a secret. Without a value option it reads stdin (one final newline dropped), or
    prompts when stdin is a terminal."""
    value = _value(string_value, bytes_value, from_file)
    with _store() as store:
        store.put(scope, key, value, _now())
    typer.echo(f"Secret {scope}/{key} stored ({len(value)} bytes, encrypted)")


@app.command("list-secrets")
def list_secrets(scope: ScopeArg, output: OutputOpt = Output.table) -> None:
    """List the keys of a scope (never the values)."""
    with _store() as store:
        secrets = store.list_secrets(scope)
    if output is Output.json:
        print_json(
            {"secrets": [{"key": s.key, "last_updated_timestamp": s.last_updated_timestamp} for s in secrets]}
        )
        return
    from sluice.cli.common import print_table

    print_table(["key", "last updated"], [(s.key, _time(s.last_updated_timestamp)) for s in secrets])


@app.command("delete-secret")
def delete_secret(scope: ScopeArg, key: KeyArg) -> None:
    """Delete a secret."""
    with _store() as store:
        store.delete_secret(scope, key)
    typer.echo(f"Secret {scope}/{key} deleted")


# -- short forms --------------------------------------------------------------------------------------

app.command("put", help="Same as put-secret.")(put_secret)


@app.command("list")
def list_short(
    scope: Annotated[
        str | None, typer.Argument(help="A scope: list its keys; none: list the scopes.")
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """list SCOPE = list-secrets SCOPE; list = list-scopes."""
    if scope is None:
        list_scopes(output)
    else:
        list_secrets(scope, output)


@app.command("delete")
def delete_short(
    scope: ScopeArg,
    key: Annotated[str | None, typer.Argument(help="The secret; none: the whole scope.")] = None,
) -> None:
    """delete SCOPE KEY = delete-secret; delete SCOPE = delete-scope (and its secrets)."""
    if key is None:
        delete_scope(scope)
    else:
        delete_secret(scope, key)


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
