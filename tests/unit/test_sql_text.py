"""The pure SQL text rewriting of :mod:`sluice.catalog.sqltext`: ``${k}`` substitution, ``SET`` parsing,
file references in FROM clauses and ``read_files`` calls."""

from __future__ import annotations

import pytest

from sluice.catalog.sqltext import (
    SetCommand,
    SqlTextError,
    file_references,
    option_paths,
    parse_set,
    parse_use,
    read_files_calls,
    read_files_format,
    substitute,
)


def test_substitute_replaces_set_values_in_every_spark_form() -> None:
    settings = {"t": "sales", "my.min": "10"}
    text = "SELECT * FROM ${t} WHERE a > ${hiveconf:my.min} AND b = '${spark:t}' AND c = ${sparkconf:t}"
    assert substitute(text, settings) == "SELECT * FROM sales WHERE a > 10 AND b = 'sales' AND c = sales"


def test_substitute_leaves_unknown_names_and_obeys_the_switch() -> None:
    assert substitute("SELECT '${nope}', ${env:HOME}", {"x": "1"}) == "SELECT '${nope}', ${env:HOME}"
    off = {"x": "1", "spark.sql.variable.substitute": "false"}
    assert substitute("SELECT ${x}", off) == "SELECT ${x}"


@pytest.mark.parametrize(
    ("statement", "command"),
    [
        ("SET", SetCommand()),
        ("set -v", SetCommand()),
        ("SET my.key", SetCommand("my.key")),
        ("SET my.key = some value ", SetCommand("my.key", "some value")),
        ("SET spark.sql.ansi.enabled=true", SetCommand("spark.sql.ansi.enabled", "true")),
        ("SET `a key` = 1", SetCommand("a key", "1")),
        ("SET TIME ZONE 'Europe/Paris'", SetCommand("spark.sql.session.timeZone", "Europe/Paris")),
        ("SET VAR x = 1", None),
        ("SET CATALOG main", None),
        ("SETTINGS", None),
        ("SELECT 1", None),
    ],
)
def test_parse_set(statement: str, command: SetCommand | None) -> None:
    assert parse_set(statement) == command


def test_file_references_outside_quotes_and_comments() -> None:
    text = (
        "SELECT * FROM csv.`/Volumes/c/s/v/a.csv` JOIN delta.`dbfs:/t/d` -- parquet.`/x`\n"
        "WHERE x = 'json.`/not/this`' AND y IN (SELECT 1 FROM workspace.`my.schema`.t)"
    )
    found = [(r.format, r.path, text[r.start : r.end]) for r in file_references(text)]
    assert found == [
        ("csv", "/Volumes/c/s/v/a.csv", "csv.`/Volumes/c/s/v/a.csv`"),
        ("delta", "dbfs:/t/d", "delta.`dbfs:/t/d`"),
    ]


def test_read_files_calls_parse_the_path_and_named_options() -> None:
    text = "SELECT * FROM read_files('/Volumes/c/s/v/x.csv', format => 'csv', header => true, sep => ';') t"
    (call,) = read_files_calls(text)
    assert text[call.start : call.end] == text[14:-2]
    assert call.path == "/Volumes/c/s/v/x.csv"
    assert call.options == {"format": "csv", "header": "true", "sep": ";"}
    assert read_files_calls("SELECT 'read_files(1)' -- read_files(\n") == []


def test_read_files_refuses_what_it_cannot_take_naming_it() -> None:
    with pytest.raises(SqlTextError, match="first argument"):
        read_files_calls("SELECT * FROM read_files(concat('/a', '/b'))")
    with pytest.raises(SqlTextError, match=r"'x' is not supported"):
        read_files_calls("SELECT * FROM read_files('/a', 'x')")
    with pytest.raises(SqlTextError, match="schemaHints => map"):
        read_files_calls("SELECT * FROM read_files('/a', schemaHints => map('a', 'int'))")


def test_read_files_format_from_the_option_or_one_extension() -> None:
    (given,) = read_files_calls("SELECT * FROM read_files('/d', format => 'JSON')")
    assert read_files_format(given, lambda: [".csv"]) == "json"
    (bare,) = read_files_calls("SELECT * FROM read_files('/d')")
    assert read_files_format(bare, lambda: [".csv", ".csv"]) == "csv"
    with pytest.raises(SqlTextError, match="format => 'csv'"):
        read_files_format(bare, lambda: [".csv", ".json"])


@pytest.mark.parametrize(
    ("statement", "use"),
    [
        ("USE fx", (None, "fx")),
        ("use schema workspace.fx", ("workspace", "fx")),
        ("USE DATABASE `my-cat`.`s`", ("my-cat", "s")),
        ("USE CATALOG workspace", None),
        ("USE SCHEMA a.b.c", None),
    ],
)
def test_parse_use(statement: str, use: tuple[str | None, str] | None) -> None:
    assert parse_use(statement) == use


def test_option_paths_find_the_path_literal_of_options_clauses() -> None:
    text = (
        "CREATE TEMPORARY VIEW v USING csv OPTIONS (header 'true', path '/Volumes/c/s/v/a.csv', sep ',') ;"
        " CREATE TABLE t USING json OPTIONS ('path' = \"dbfs:/x\") -- OPTIONS (path '/no')"
    )
    found = [(r.path, text[r.start : r.end]) for r in option_paths(text)]
    assert found == [("/Volumes/c/s/v/a.csv", "'/Volumes/c/s/v/a.csv'"), ("dbfs:/x", '"dbfs:/x"')]
