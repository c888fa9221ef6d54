"""Helpers shared by the CLI commands: opening the store, parsing ``k=v``, printing, exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from sluice.errors import InvalidJobError, InvalidRequestError, NotFoundError, SluiceError
from sluice.states import ResultState

if TYPE_CHECKING:
    from sluice.settings import Settings
    from sluice.store import Store

#: Exit codes of commands that run something.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
#: Remote mode: the server could not be reached, refused the token, or failed (see ``sluice.cli.remote``).
EXIT_REMOTE = 3


class Output(StrEnum):
    table = "table"
    json = "json"


def exit_code_for(result: str | None) -> int:
    """0 for SUCCESS and SUCCESS_WITH_FAILURES, 1 for anything else that ended a run."""
    ok = (ResultState.SUCCESS.value, ResultState.SUCCESS_WITH_FAILURES.value)
    return EXIT_OK if result in ok else EXIT_FAILED


def parse_pairs(pairs: Sequence[str], what: str) -> dict[str, str]:
    """``["k=v", ...]`` -> dict; a pair without '=' is a usage error naming it."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"{what} '{pair}' is not of the form name=value", EXIT_INVALID)
        out[key] = value
    return out


class RemoteError(Exception):
    """A request the server refused or could not answer: the message to print and the exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    """Turn Sluice's errors into a message on stderr and the documented exit code."""
    try:
        yield
    except InvalidJobError as exc:
        typer.echo("Invalid job definition:", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    except (InvalidRequestError, NotFoundError) as exc:
        fail(str(exc), EXIT_INVALID)
    except RemoteError as exc:
        fail(str(exc), exc.exit_code)
    except SluiceError as exc:
        fail(str(exc), EXIT_FAILED)


def load_settings() -> Settings:
    from sluice.settings import Settings

    return Settings.from_env()


def open_store(settings: Settings) -> Store:
    from sluice.store import Store

    return Store.open(settings.database_url, settings.home)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    whole: Sequence[str] = (),
) -> None:
    """A table on the terminal; the ``whole`` columns wrap instead of being cut with an ellipsis."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold" if column in whole else "ellipsis")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console().print(table)
