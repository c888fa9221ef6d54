"""display(): DataFrames as tables with a row limit, plain printing outside IPython."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the environment
import pytest

from sluice.runtime.display import MAX_ROWS, display, displayHTML, table_bundle


def test_a_pandas_frame_becomes_an_escaped_html_table_with_a_text_fallback() -> None:
    frame = pd.DataFrame({"id": [1, 2], "name": ["<script>", "ok"]})
    bundle = table_bundle(frame)
    assert set(bundle) == {"text/html", "text/plain"}
    assert "<table" in bundle["text/html"]
    assert "&lt;script&gt;" in bundle["text/html"]
    assert "<script>" not in bundle["text/html"]
    assert bundle["text/plain"].splitlines()[-1] == "2 rows"
    assert "<script>" in bundle["text/plain"]


def test_only_the_first_rows_are_shown() -> None:
    frame = pd.DataFrame({"n": range(12)})
    bundle = table_bundle(frame, limit=5)
    assert bundle["text/plain"].splitlines() == [
        " n",
        " 0",
        " 1",
        " 2",
        " 3",
        " 4",
        "Showing the first 5 rows.",
    ]
    assert bundle["text/html"].count("<tr") == 6  # header + 5 rows
    assert MAX_ROWS == 10_000


def test_outside_ipython_display_prints(capsys: pytest.CaptureFixture[str]) -> None:
    display(pd.DataFrame({"a": [1]}))
    display("just text", 42)
    displayHTML("<b>x</b>")
    assert capsys.readouterr().out.splitlines() == [" a", " 1", "1 row", "just text 42", "<b>x</b>"]


def test_display_needs_no_ipython() -> None:
    code = (
        "import sys; sys.modules['IPython'] = None\n"
        "from sluice.runtime.display import display\n"
        "display({'k': 1})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "{'k': 1}\n"
