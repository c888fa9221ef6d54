"""The CLI reference (docs/cli.md), generated from the commands themselves.

``python -m sluice.cli.docs > docs/cli.md`` rewrites it; a test fails when it is out of date.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import typer.main


def _param_line(param: Any) -> str:
    if param.param_type_name == "argument":
        name = param.human_readable_name.upper()
        optional = "" if param.required else " (optional)"
        return f"- `{name}`{optional}: {getattr(param, 'help', '') or ''}".rstrip()
    names = ", ".join(f"`{o}`" for o in (*param.opts, *param.secondary_opts))
    text = param.help or ""
    if param.default not in (None, False, (), []) and not param.is_flag:
        default = getattr(param.default, "value", param.default)
        text += f" Default: `{default}`."
    return f"- {names}: {text.strip()}"


def _walk(command: Any, path: list[str]) -> Iterator[str]:
    if hasattr(command, "commands"):
        if path:
            yield f"## `{' '.join(path)}`\n\n{inspect.cleandoc(command.help or '')}\n"
        for name in sorted(command.commands):
            yield from _walk(command.commands[name], [*path, name])
        return
    arguments = [p.human_readable_name.upper() for p in command.params if p.param_type_name == "argument"]
    usage = " ".join(["[OPTIONS]", *arguments])
    name = " ".join(path)
    yield f"### `{name}`\n\n```\n{name} {usage}\n```\n\n{inspect.cleandoc(command.help or '')}\n"
    lines = [_param_line(p) for p in command.params if not getattr(p, "hidden", False) and p.name != "help"]
    if lines:
        yield "\n".join(lines) + "\n"


def render() -> str:
    from sluice.cli.main import full_app

    root = typer.main.get_command(full_app())
    parts = [
        "# CLI reference\n",
        "Generated from the commands by `python -m sluice.cli.docs > docs/cli.md`; a test keeps it current."
        "\n",
        "Exit codes of commands that run something: 0 SUCCESS or SUCCESS_WITH_FAILURES, 1 FAILED, TIMEDOUT,",
        "CANCELED or a skipped run, 2 invalid input.\n",
    ]
    parts.extend(_walk(root, ["sluice"]))
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
