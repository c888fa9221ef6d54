"""Databricks notebook parsing: source format, ``.ipynb``, ``%run`` lines and notebook paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sluice.notebooks import (
    Cell,
    CellKind,
    Notebook,
    NotebookSourceError,
    RunCommand,
    cell_from_text,
    check_run_cells,
    from_ipynb,
    is_databricks_source,
    parse_run_magic,
    parse_source,
    read_notebook,
    render_source,
    resolve_notebook_path,
    to_ipynb,
)

FIXTURES = Path(__file__).parent / "notebook_fixtures"
SOURCE_FIXTURES = {
    "all_magics.dbpy": "python",
    "practice.dbpy": "python",
    "sql_notebook.sql": "sql",
    "scala_notebook.scala": "scala",
    "r_notebook.r": "r",
}


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _magic_cells(name: str) -> list[Cell]:
    return parse_source(_fixture(name))


# ------------------------------------------------------------------------------------------------ detection


@pytest.mark.parametrize(
    ("text", "suffix", "expected"),
    [
        ("# Databricks notebook source\nx = 1\n", None, "python"),
        ("# Databricks notebook source\r\nx = 1\r\n", None, "python"),
        ("# Databricks notebook source\nlibrary(x)\n", ".r", "r"),
        ("# Databricks notebook source\nlibrary(x)\n", ".R", "r"),
        ("-- Databricks notebook source\nSELECT 1\n", None, "sql"),
        ("// Databricks notebook source\nval x = 1\n", None, "scala"),
        ("# Databricks notebook source", None, "python"),
        ("# Databricks notebook source \nx = 1\n", None, None),
        (" # Databricks notebook source\n", None, None),
        ("x = 1\n# Databricks notebook source\n", None, None),
        ("-- databricks notebook source\n", None, None),
        ("", None, None),
    ],
)
def test_is_databricks_source_matches_the_exact_first_line(
    text: str, suffix: str | None, expected: str | None
) -> None:
    assert is_databricks_source(text, suffix=suffix) == expected


# -------------------------------------------------------------------------------------------------- parsing


def test_every_magic_is_parsed_into_language_kind_and_source() -> None:
    cells = _magic_cells("all_magics.dbpy")
    summary = [(c.index, c.language, c.kind, c.magic, c.title) for c in cells]
    assert summary == [
        (0, "markdown", CellKind.MARKDOWN, "%md", None),
        (1, "markdown", CellKind.MARKDOWN, "%md-sandbox", None),
        (2, "pip", CellKind.MAGIC, "%pip", None),
        (3, "restart_python", CellKind.MAGIC, "%restart_python", None),
        (4, "python", CellKind.CODE, None, "Imports"),
        (5, "run", CellKind.MAGIC, "%run", None),
        (6, "run", CellKind.MAGIC, "%run", None),
        (7, "run", CellKind.MAGIC, "%run", None),
        (8, "python", CellKind.CODE, None, None),
        (9, "sql", CellKind.CODE, "%sql", "Top customers"),
        (10, "python", CellKind.CODE, "%python", None),
        (11, "sh", CellKind.MAGIC, "%sh", None),
        (12, "fs", CellKind.MAGIC, "%fs", None),
        (13, "scala", CellKind.CODE, "%scala", "Hidden title"),
        (14, "r", CellKind.CODE, "%r", None),
        (15, "python", CellKind.CODE, None, None),
    ]


def test_magic_cell_sources_drop_the_magic_prefix_and_the_magic_token() -> None:
    cells = _magic_cells("all_magics.dbpy")
    assert cells[0].source == "# Every magic\n\nOne cell per magic, as the workspace exports them."
    assert cells[0].magic_inline is False
    assert cells[2].source == "install requests==2.32.3"
    assert cells[2].magic_inline is True
    assert cells[2].magic_line == "%pip install requests==2.32.3"
    assert cells[3].source == ""
    assert cells[3].magic_line == "%restart_python"
    assert cells[4].source == "import json\n\nfrom pyspark.sql import functions as F"
    assert cells[4].magic_line is None
    assert cells[8].source == ""
    assert cells[9].source == (
        "SELECT customer_id, count(*) AS orders\nFROM workspace.silver.orders\n\nGROUP BY customer_id"
    )
    assert cells[10].source == 'for i in range(2):\n    print(json.dumps({"ok": i}))'
    assert cells[11].source == 'ls -la /tmp\necho "done"'
    assert cells[12].source == "ls /Volumes/workspace/ecommerce"
    assert (cells[13].title_shown, cells[9].title_shown) == (False, True)
    assert cells[15].source.startswith("def indented():\n    # a comment, not a separator")


def test_practice_notebook_from_the_seed_keeps_its_widget_and_load_cells() -> None:
    cells = _magic_cells("practice.dbpy")
    assert [c.kind for c in cells] == [
        CellKind.MARKDOWN,
        CellKind.CODE,
        CellKind.CODE,
        CellKind.CODE,
        CellKind.MARKDOWN,
        CellKind.CODE,
        CellKind.CODE,
        CellKind.CODE,
    ]
    assert cells[2].source.startswith("def load_ecommerce_dataset(Month_name):\n")
    assert cells[2].source.endswith("    return df")
    assert 'dbutils.widgets.dropdown("month", "Oct", ["Oct", "Nov"])' in cells[5].source
    assert cells[6].source.splitlines()[1] == 'source = dbutils.widgets.get("source_path")'
    assert cells[4].source == "#### **1. Add parameter widgets to notebooks**"


def test_sql_notebook_with_python_and_markdown_cells() -> None:
    cells = _magic_cells("sql_notebook.sql")
    assert [(c.language, c.magic, c.title) for c in cells] == [
        ("markdown", "%md", None),
        ("sql", None, None),
        ("sql", None, "Count"),
        ("python", "%python", None),
    ]
    assert cells[2].source == "SELECT count(*) FROM workspace.silver.orders WHERE month = '$month'"
    assert cells[3].source == 'month = dbutils.widgets.get("month")\n\ndbutils.notebook.exit(month)'


def test_scala_and_r_notebooks_use_their_comment_prefixes() -> None:
    scala = _magic_cells("scala_notebook.scala")
    assert [(c.language, c.magic) for c in scala] == [
        ("scala", None),
        ("markdown", "%md"),
        ("python", "%python"),
    ]
    r_cells = parse_source(_fixture("r_notebook.r"), default_language="r")
    assert [(c.language, c.source) for c in r_cells] == [("r", "library(SparkR)"), ("sql", "SELECT 1")]
    # Without the hint a '#' header reads as Python, as the CLI does for a .py file.
    assert parse_source(_fixture("r_notebook.r"))[0].language == "python"


def test_crlf_input_parses_like_lf() -> None:
    text = _fixture("all_magics.dbpy")
    assert parse_source(text.replace("\n", "\r\n")) == parse_source(text)


def test_non_canonical_spacing_is_trimmed_like_the_export() -> None:
    text = (
        "# Databricks notebook source\n\n\nx = 1   \n\n\n"
        "# COMMAND ----------   \n"
        "# MAGIC %sql\n# MAGIC SELECT 1\n# MAGIC \n# MAGIC FROM t\n\n\n"
    )
    cells = parse_source(text)
    assert [c.source for c in cells] == ["x = 1   ", "SELECT 1\n\nFROM t"]
    assert render_source(cells, "python") == (
        "# Databricks notebook source\nx = 1   \n\n# COMMAND ----------\n\n"
        "# MAGIC %sql\n# MAGIC SELECT 1\n# MAGIC\n# MAGIC FROM t\n"
    )


def test_partly_magic_cells_stay_code_and_magic_lines_must_be_exact() -> None:
    cells = parse_source("# Databricks notebook source\n# MAGIC %sql\nx = 1\n# MAGICAL comment\n")
    assert cells == [Cell("python", CellKind.CODE, "# MAGIC %sql\nx = 1\n# MAGICAL comment")]


def test_raw_magic_without_prefix_is_still_a_magic_cell() -> None:
    (cell,) = parse_source("# Databricks notebook source\n%sql\nSELECT 1\n")
    assert (cell.language, cell.magic, cell.source) == ("sql", "%sql", "SELECT 1")


def test_header_only_notebook_has_no_cells() -> None:
    assert parse_source("# Databricks notebook source\n") == []
    assert parse_source("-- Databricks notebook source") == []
    assert render_source([], "sql") == "-- Databricks notebook source\n"


def test_headerless_text_needs_a_default_language() -> None:
    with pytest.raises(
        NotebookSourceError, match=r"first line must be exactly '# Databricks notebook source'"
    ):
        parse_source("print(1)\n")
    cells = parse_source("SELECT 1\n\n-- COMMAND ----------\n\nSELECT 2\n", default_language="sql")
    assert [c.source for c in cells] == ["SELECT 1", "SELECT 2"]
    with pytest.raises(NotebookSourceError, match=r"unknown notebook language 'java'; use one of python, r"):
        parse_source("x", default_language="java")


def test_inline_and_unknown_magics() -> None:
    cell = cell_from_text("%md # Title\nbody", "python", index=3)
    assert (cell.kind, cell.source, cell.magic_inline, cell.index) == (
        CellKind.MARKDOWN,
        "# Title\nbody",
        True,
        3,
    )
    assert cell_from_text("%SQL\nSELECT 1", "python").language == "sql"
    odd = cell_from_text("%timeit x()", "python")
    assert (odd.language, odd.kind, odd.magic, odd.source) == ("timeit", CellKind.MAGIC, "%timeit", "x()")


# ------------------------------------------------------------------------------------------------ rendering


@pytest.mark.parametrize(("name", "language"), sorted(SOURCE_FIXTURES.items()))
def test_canonical_exports_round_trip(name: str, language: str) -> None:
    text = _fixture(name)
    cells = parse_source(text, default_language=language)
    assert render_source(cells, language) == text
    assert parse_source(render_source(cells, language), default_language=language) == cells


def test_render_writes_titles_magics_and_bare_magic_lines() -> None:
    cells = [
        Cell("python", CellKind.CODE, "x = 1", title="One"),
        Cell("sql", CellKind.CODE, "SELECT 1\n\nFROM t", "%sql", "Hidden", 1, title_shown=False),
        Cell("run", CellKind.MAGIC, './nb $a="1"', "%run", index=2, magic_inline=True),
        Cell("python", CellKind.CODE, "", index=3),
    ]
    assert render_source(cells, "python") == (
        "# Databricks notebook source\n# DBTITLE 1,One\nx = 1\n\n# COMMAND ----------\n\n"
        "# DBTITLE 0,Hidden\n# MAGIC %sql\n# MAGIC SELECT 1\n# MAGIC\n# MAGIC FROM t\n\n"
        "# COMMAND ----------\n\n"
        '# MAGIC %run ./nb $a="1"\n\n# COMMAND ----------\n\n\n'
    )
    with pytest.raises(NotebookSourceError, match="unknown notebook language 'bash'"):
        render_source(cells, "bash")


# ------------------------------------------------------------------------------------------------------ %run


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("%run ./other", RunCommand("./other", {})),
        ("%run ../lib/helpers", RunCommand("../lib/helpers", {})),
        ('%run "./my notebook"', RunCommand("./my notebook", {})),
        ("%run './with spaces/nb'", RunCommand("./with spaces/nb", {})),
        ("  %run   /Workspace/Shared/nb  ", RunCommand("/Workspace/Shared/nb", {})),
        (
            "%run ./nb $arg=\"value\" $n=3 $q='single'",
            RunCommand("./nb", {"arg": "value", "n": "3", "q": "single"}),
        ),
        ('%run ./nb $text="two words" $empty=""', RunCommand("./nb", {"text": "two words", "empty": ""})),
        ("%run ./nb $expr=a=b", RunCommand("./nb", {"expr": "a=b"})),
    ],
)
def test_parse_run_magic(line: str, expected: RunCommand) -> None:
    assert parse_run_magic(line) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%sql SELECT 1", r"not a %run line: '%sql SELECT 1'; it must start with '%run '"),
        ("%running ./x", r"not a %run line"),
        ("", r"not a %run line"),
        ("%run", r"%run needs a notebook path, e.g. '%run ./other'"),
        ('%run ""', r"%run has an empty notebook path"),
        ('%run "./my notebook', r"%run line has an unterminated \" quote"),
        ("%run ./nb $q='x", r"%run line has an unterminated ' quote"),
        ("%run ./nb n=3", r"%run argument 'n=3' must look like \$name=value \(e\.g\. \$n=3\)"),
        ("%run ./nb $n", r"%run argument '\$n' has no value; write \$n=<value>"),
        ("%run ./nb $=3", r"%run argument '\$=3' needs a name"),
        ("%run ./nb $n=1 $n=2", r"%run argument \$n is given twice"),
    ],
)
def test_parse_run_magic_errors(line: str, message: str) -> None:
    with pytest.raises(NotebookSourceError, match=message):
        parse_run_magic(line)


def test_check_run_cells_returns_every_run_command() -> None:
    commands = check_run_cells(_magic_cells("all_magics.dbpy"))
    assert commands == {
        5: RunCommand("./lib/helpers", {}),
        6: RunCommand("./my notebook", {"arg": "value", "n": "3", "q": "single"}),
        7: RunCommand("../with spaces/nb", {}),
    }


def test_check_run_cells_reports_all_problems_with_cell_numbers() -> None:
    cells = [
        cell_from_text("%run ./a\nprint(1)", "python", index=0, title="Setup"),
        cell_from_text("%run\n./b", "python", index=1),
        cell_from_text("x = 1\n%run ./c", "python", index=2),
        cell_from_text('%run "./d', "python", index=3),
        cell_from_text("%run ./ok", "python", index=4),
        cell_from_text("%md\nUse:\n%run ./shared", "python", index=5),
        cell_from_text("%sh\necho x\n%run", "python", index=6),
    ]
    with pytest.raises(NotebookSourceError) as info:
        check_run_cells(cells)
    assert str(info.value).splitlines() == [
        "cell 1 ('Setup'): %run must be alone in its cell; move the other lines to a new cell",
        "cell 2: %run needs a notebook path on its line, e.g. '%run ./other'",
        "cell 3: %run must be alone in its cell and first; put it in a cell of its own",
        "cell 4: %run line has an unterminated \" quote: '%run \"./d'; close the quote",
    ]


# ------------------------------------------------------------------------------------------------------ paths


def test_resolve_notebook_path_tries_the_databricks_extensions(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helpers.py").write_text("# Databricks notebook source\n")
    (tmp_path / "jobs" / "my notebook.sql").write_text("-- Databricks notebook source\n")
    (tmp_path / "jobs" / "nb.ipynb").write_text("{}")
    (tmp_path / "jobs" / "exact.txt").write_text("x")
    base = tmp_path / "jobs"
    assert resolve_notebook_path(base, "../lib/helpers") == tmp_path / "lib" / "helpers.py"
    assert resolve_notebook_path(base, "./my notebook") == base / "my notebook.sql"
    assert resolve_notebook_path(base, "nb") == base / "nb.ipynb"
    assert resolve_notebook_path(base, "exact.txt") == base / "exact.txt"
    assert resolve_notebook_path(base, str(tmp_path / "lib" / "helpers")) == tmp_path / "lib" / "helpers.py"


def test_resolve_notebook_path_prefers_the_path_as_given_then_extension_order(tmp_path: Path) -> None:
    (tmp_path / "both.py").write_text("")
    (tmp_path / "both.sql").write_text("")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir.scala").write_text("")
    assert resolve_notebook_path(tmp_path, "both") == tmp_path / "both.py"
    assert resolve_notebook_path(tmp_path, "./dir") == tmp_path / "dir.scala"


def test_resolve_notebook_path_errors_list_what_was_tried(tmp_path: Path) -> None:
    with pytest.raises(NotebookSourceError) as info:
        resolve_notebook_path(tmp_path, "./missing")
    message = str(info.value)
    assert message.startswith(f"notebook './missing' not found (relative to {tmp_path}); tried: ")
    for suffix in ("", ".py", ".sql", ".scala", ".r", ".ipynb"):
        assert f"{tmp_path / 'missing'}{suffix}" in message
    assert message.endswith("Check the path; Databricks paths leave out the extension")
    with pytest.raises(NotebookSourceError, match="empty notebook path"):
        resolve_notebook_path(tmp_path, "  ")


# ------------------------------------------------------------------------------------------- files, ipynb


@pytest.mark.parametrize(("name", "language"), sorted(SOURCE_FIXTURES.items()))
def test_read_notebook_reads_source_files(name: str, language: str) -> None:
    notebook = read_notebook(FIXTURES / name)
    assert notebook.language == language
    assert notebook.path == FIXTURES / name
    assert list(notebook.cells) == parse_source(_fixture(name), default_language=language)


def test_read_notebook_rejects_files_without_header(tmp_path: Path) -> None:
    plain = tmp_path / "plain.py"
    plain.write_text("print(1)\n")
    with pytest.raises(NotebookSourceError, match=r"plain\.py is not a Databricks notebook: its first line"):
        read_notebook(plain)
    with pytest.raises(NotebookSourceError, match=r"cannot read notebook .*absent\.py"):
        read_notebook(tmp_path / "absent.py")
    binary = tmp_path / "binary.py"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(NotebookSourceError, match="cannot read notebook"):
        read_notebook(binary)


def test_read_databricks_ipynb_uses_databricks_language_and_titles() -> None:
    notebook = read_notebook(FIXTURES / "databricks_export.ipynb")
    assert notebook.language == "sql"
    assert [(c.index, c.language, c.kind, c.magic, c.title, c.source) for c in notebook.cells] == [
        (0, "markdown", CellKind.MARKDOWN, "%md", None, "## Orders\nby month"),
        (1, "sql", CellKind.CODE, None, "Count", "SELECT count(*)\nFROM workspace.silver.orders"),
        (2, "python", CellKind.CODE, "%python", None, "print(1)"),
        (3, "run", CellKind.MAGIC, "%run", None, './lib/helpers $env="dev"'),
    ]
    assert check_run_cells(notebook.cells) == {3: RunCommand("./lib/helpers", {"env": "dev"})}


def test_read_plain_jupyter_notebook() -> None:
    notebook = read_notebook(FIXTURES / "jupyter_plain.ipynb")
    assert notebook.language == "python"
    assert [(c.language, c.magic, c.source) for c in notebook.cells] == [
        ("markdown", "%md", "# Plain Jupyter"),
        ("python", None, "x = 1\nprint(x)"),
        ("sql", "%sql", "SELECT 1"),
        ("markdown", "%md-sandbox", "<b>html</b>"),
    ]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], r"nb\.ipynb: invalid Jupyter notebook file \(no metadata object\)"),
        ({"metadata": {}, "nbformat": 4}, r"invalid Jupyter notebook file \(no cells list\)"),
        (
            {"metadata": {}, "cells": [], "nbformat": 3},
            r"unsupported Jupyter notebook version: 3; use nbformat 4",
        ),
        ({"metadata": {}, "cells": [], "nbformat": "4"}, r"unsupported Jupyter notebook version: 4"),
        ({"metadata": {}, "cells": ["x"], "nbformat": 4}, r"cell 1 is not an object"),
        (
            {"metadata": {}, "cells": [{"cell_type": "heading"}], "nbformat": 4},
            r"unknown cell_type 'heading'",
        ),
    ],
)
def test_ipynb_errors(tmp_path: Path, document: object, message: str) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(document))
    with pytest.raises(NotebookSourceError, match=message):
        read_notebook(path)


def test_ipynb_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text("{not json")
    with pytest.raises(NotebookSourceError, match=r"broken\.ipynb: error loading Jupyter notebook file"):
        read_notebook(path)


def test_ipynb_language_falls_back_to_language_info_kernelspec_then_python() -> None:
    def language(metadata: dict[str, object]) -> str:
        return from_ipynb({"metadata": metadata, "cells": [], "nbformat": 4}).language

    assert language({"language_info": {"name": "R"}}) == "r"
    assert language({"kernelspec": {"language": "scala"}}) == "scala"
    assert language({"language_info": {"name": "julia"}}) == "python"
    assert language({}) == "python"


def test_to_ipynb_shape() -> None:
    notebook = read_notebook(FIXTURES / "sql_notebook.sql")
    document = to_ipynb(notebook)
    assert (document["nbformat"], document["nbformat_minor"]) == (4, 4)
    assert document["metadata"]["application/vnd.databricks.v1+notebook"] == {
        "language": "sql",
        "notebookName": "sql_notebook",
    }
    markdown, widget, count, python = document["cells"]
    assert markdown == {
        "cell_type": "markdown",
        "metadata": {
            "application/vnd.databricks.v1+cell": {"title": "", "showTitle": False},
            "sluice": {"magic": "%md", "magic_inline": False, "language": "markdown"},
        },
        "source": "## Orders by month",
    }
    assert widget["execution_count"] is None
    assert widget["outputs"] == []
    assert count["metadata"]["application/vnd.databricks.v1+cell"] == {"title": "Count", "showTitle": True}
    assert python["source"].startswith('%python\nmonth = dbutils.widgets.get("month")')
    assert python["metadata"]["sluice"]["magic"] == "%python"
    assert (
        to_ipynb(Notebook("python", ()))["metadata"]["application/vnd.databricks.v1+notebook"]["notebookName"]
        == "notebook"
    )


@pytest.mark.parametrize(("name", "language"), sorted(SOURCE_FIXTURES.items()))
def test_ipynb_round_trip_keeps_every_cell(tmp_path: Path, name: str, language: str) -> None:
    notebook = read_notebook(FIXTURES / name)
    path = tmp_path / "copy.ipynb"
    path.write_text(json.dumps(to_ipynb(notebook)))
    again = read_notebook(path)
    assert (again.language, again.cells) == (language, notebook.cells)
    assert render_source(again.cells, language) == _fixture(name)


def test_inline_markdown_survives_ipynb() -> None:
    cells = (
        cell_from_text("%md # Title", "python"),
        cell_from_text("%md-sandbox\n<b>x</b>", "python", index=1),
    )
    document = to_ipynb(Notebook("python", cells))
    assert [c["source"] for c in document["cells"]] == ["# Title", "<b>x</b>"]
    assert from_ipynb(document).cells == cells
