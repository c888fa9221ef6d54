"""The pure parts of the notebook magics: cell rewriting, SQL statement splitting, parameter binding."""

from __future__ import annotations

import pytest

from sluice.notebooks.magics import (
    MagicError,
    _bind_parameters,
    legacy_names,
    split_sql,
    transform_databricks_magics,
)


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


def test_named_markers_are_bound_only_outside_quotes_and_legacy_dollar_braces_are_substituted() -> None:
    values = {"x": "1", "y": "2", "z": "3"}
    text, args = _bind_parameters("SELECT * FROM t WHERE a = :x AND b = ':y' AND c = ${z}", values)
    assert text == "SELECT * FROM t WHERE a = :x AND b = ':y' AND c = 3"
    assert args == {"x": "1"}
    text, args = _bind_parameters("SELECT ${missing}, :unknown, a::int", values)
    assert text == "SELECT ${missing}, :unknown, a::int", "unknown names are left for Spark to report"
    assert args == {}


def test_legacy_names_are_the_substituted_dollar_brace_parameters_once_each_in_order() -> None:
    values = {"a": "1", "b": "2"}
    assert legacy_names("SELECT ${b}, ${a}, ${b}, ${missing}, :a", values) == ["b", "a"]
    assert legacy_names("SELECT :a", values) == []


def test_get_argument_in_sql_is_the_widget_value_as_a_string_literal() -> None:
    values = {"region": "emea", "who": "O'Brien"}
    text, args = _bind_parameters(
        "SELECT * FROM t WHERE r = getArgument('region') AND n = getArgument(\"who\") "
        "AND id > getArgument('min_id', '1')",
        values,
    )
    assert text == "SELECT * FROM t WHERE r = 'emea' AND n = 'O\\'Brien' AND id > '1'"
    assert args == {}


def test_get_argument_in_sql_without_value_or_default_names_the_widget() -> None:
    with pytest.raises(MagicError, match=r"getArgument\('day'\) in %sql: no widget or job parameter 'day'"):
        _bind_parameters("SELECT getArgument('day')", {})
