"""Docs as tested artifacts: the CLI reference matches the commands."""

from __future__ import annotations

from pathlib import Path

from sluice.cli.docs import render

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_current() -> None:
    current = (ROOT / "docs" / "cli.md").read_text()
    assert current == render(), "docs/cli.md is out of date: run `python -m sluice.cli.docs > docs/cli.md`"


def test_every_command_is_documented() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    commands = (
        "sluice run",
        "sluice validate",
        "sluice deploy",
        "sluice jobs run-now",
        "sluice runs reconcile",
        "sluice runs get-output",
        "sluice runs logs",
        "sluice runs cancel",
    )
    for command in commands:
        assert f"### `{command}`" in text
