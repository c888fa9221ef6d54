"""The pure parts of the notebook magics: cell rewriting, SQL statement splitting, parameter binding."""

from __future__ import annotations

import pytest

from sluice.notebooks.magics import (
    MagicError,
    legacy_names,
    split_sql,
    substitute_get_argument,
    transform_databricks_magics,
)
from sluice.sqltask import bind_inline, markers


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (["%sql\n", "SELECT 1\n"], ["%%sluice_sql \n", "SELECT 1\n"]),
        (["%fs ls /tmp\n"], ["%%sluice_fs ls /tmp\n", "\n"]),
        (["%md\n", "# Title\n"], ["%%sluice_md \n", "# Title\n"]),
        (["%scala\n", "val x = 1\n"], ["%%sluice_unsupported scala\n", "val x = 1\n"]),
        (["x = 1\n"], ["x = 1\n"]),
        (["%%time\n", "x = 1\n"], ["%%time\n", "x = 1\n"]),
        ([], []),
    ],
)
def test_a_cell_starting_with_a_databricks_magic_becomes_a_cell_magic(
    cell: list[str], expected: list[str]
) -> None:
    assert transform_databricks_magics(cell) == expected


def test_sql_statements_split_on_semicolons_outside_quotes_and_comments() -> None:
    text = "SELECT ';' AS a; -- a comment; still the comment\nSELECT \"x;y\";\n;\n  SELECT 3"
    statements = split_sql(text)
    assert len(statements) == 3
    assert statements[0] == "SELECT ';' AS a"
    assert statements[1].endswith('SELECT "x;y"')
    assert statements[2].strip() == "SELECT 3"
    assert split_sql(" ;\n; ") == []


def test_sql_magic_markers_are_found_only_outside_quotes_and_casts() -> None:
    """%sql binds through sql_task's binding (sluice.sqltask): the same markers in both."""
    found = markers("SELECT * FROM t WHERE a = :x AND b = ':y' AND c = `:q` AND d = a::int AND e = j:k")
    assert [m.name for m in found] == ["x"]
    assert bind_inline("INSERT INTO t VALUES (:x)", {"x": "it's"}) == "INSERT INTO t VALUES ('it\\u0027s')"


def test_legacy_names_are_the_substituted_dollar_brace_parameters_once_each_in_order() -> None:
    values = {"a": "1", "b": "2"}
    assert legacy_names("SELECT ${b}, ${a}, ${b}, ${missing}, :a", values) == ["b", "a"]
    assert legacy_names("SELECT :a", values) == []


def test_get_argument_in_sql_is_the_widget_value_as_a_string_literal() -> None:
    values = {"region": "emea", "who": "O'Brien"}
    text = substitute_get_argument(
        "SELECT * FROM t WHERE r = getArgument('region') AND n = getArgument(\"who\") "
        "AND id > getArgument('min_id', '1')",
        values,
    )
    assert text == "SELECT * FROM t WHERE r = 'emea' AND n = 'O\\'Brien' AND id > '1'"


def test_get_argument_in_sql_without_value_or_default_names_the_widget() -> None:
    with pytest.raises(MagicError, match=r"getArgument\('day'\) in %sql: no widget or job parameter 'day'"):
        substitute_get_argument("SELECT getArgument('day')", {})
