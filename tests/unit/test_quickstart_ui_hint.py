"""The quick start ends by printing how to open the Jobs UI: the command it prints must exist and the URL
must be where that command serves the jobs list (issue 14: open the printed URL, no other step)."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from sluice.cli.serve_cmd import app as serve_app
from sluice.settings import DEFAULT_SERVER_HOST, DEFAULT_SERVER_PORT

QUICKSTART = Path(__file__).resolve().parents[2] / "scripts" / "quickstart"


def test_the_printed_serve_command_and_url_hold() -> None:
    text = QUICKSTART.read_text()
    printed = "\n".join(re.findall(r'^echo "(.*)"$', text, re.MULTILINE))
    serve = re.search(r"\$sluice serve(( --[a-z-]+)*)", printed)
    assert serve, printed
    flags = serve.group(1).split()
    assert flags == ["--no-auth"], "the quick start's UI line serves without login (local use)"
    help_text = CliRunner().invoke(serve_app, ["--help"], terminal_width=200).output
    for flag in flags:
        assert flag in help_text
    assert f"http://{DEFAULT_SERVER_HOST}:{DEFAULT_SERVER_PORT}/jobs" in printed
