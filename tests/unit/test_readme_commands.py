"""The docs' commands are commands the CLI accepts: every `sluice ...` line of the shell blocks of the README
and the guides parses (subcommand, arguments and options), with placeholders (`RUN`, `TASK_RUN_ID`)
standing for a number. Guide lines that show syntax (`[--task KEY]`, `<run id>`, `...`) are skipped."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import typer

from sluice.cli.main import full_app

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"[A-Z][A-Z_]*")
SYNTAX = ("[", "<", "|", "$", "...")


def _commands(markdown: str) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", markdown, flags=re.DOTALL)
    lines = [line.split("  #", 1)[0].strip() for block in blocks for line in block.splitlines()]
    # the command only: not what a shell redirects its output to
    return [re.split(r" [12]?> ", line, maxsplit=1)[0] for line in lines if line.startswith("sluice ")]


def _parse(words: list[str]) -> None:
    """Resolve the subcommands and parse the rest as click would, without running anything."""
    command: Any = typer.main.get_command(full_app())
    context = command.context_class(command, info_name="sluice")
    while hasattr(command, "get_command"):  # a group
        name, words = words[0], words[1:]
        sub = command.get_command(context, name)
        assert sub is not None, f"no command '{name}'"
        command = sub
        context = command.context_class(command, info_name=name, parent=context)
    command.make_context(
        command.name, ["1" if PLACEHOLDER.fullmatch(w) else w for w in words], parent=context.parent
    )


def test_the_readmes_using_it_commands_parse() -> None:
    commands = _commands((ROOT / "README.md").read_text())
    assert any(c.startswith("sluice runs export") for c in commands)
    for line in commands:
        try:
            _parse(shlex.split(line, comments=True)[1:])
        except Exception as exc:  # click's UsageError (typer's own copy of click)
            raise AssertionError(f"README: `{line}` is refused: {exc}") from None


def test_the_guides_commands_parse() -> None:
    checked = 0
    for guide in sorted((ROOT / "docs" / "guide").glob("*.md")):
        for line in _commands(guide.read_text()):
            if any(mark in line for mark in SYNTAX):
                continue
            try:
                _parse(shlex.split(line, comments=True)[1:])
            except Exception as exc:  # click's UsageError (typer's own copy of click)
                raise AssertionError(f"{guide.name}: `{line}` is refused: {exc}") from None
            checked += 1
    assert checked > 10
