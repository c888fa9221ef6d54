"""The pure parts of SQL tasks: statement splitting, parameter markers, safe inline binding, JSON rows."""

from __future__ import annotations

import datetime
import decimal
import re
from pathlib import Path

import pytest

from sluice.sqltask import (
    SqlTaskError,
    bind_inline,
    is_query,
    jsonable,
    markers,
    quote_identifier,
    read_statements,
    sql_literal,
)


def test_split_keeps_semicolons_in_strings_and_drops_comments(tmp_path: Path) -> None:
    path = tmp_path / "f.sql"
    path.write_text(
        "-- setup; not a statement\n"
        "CREATE SCHEMA s;\n"
        "INSERT INTO t VALUES ('a;b', \"c;d\", 'it''s; fine', 'x\\';y');\n"
        "/* block; comment */ SELECT `weird;name` FROM t;\n"
        ";;\n"
    )
    assert read_statements(str(path)) == [
        "CREATE SCHEMA s",
        "INSERT INTO t VALUES ('a;b', \"c;d\", 'it''s; fine', 'x\\';y')",
        "SELECT `weird;name` FROM t",
    ]


def test_empty_or_missing_file_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "e.sql"
    empty.write_text("-- nothing here\n;\n")
    with pytest.raises(SqlTaskError, match="has no statements"):
        read_statements(str(empty))
    with pytest.raises(SqlTaskError, match="cannot be read"):
        read_statements(str(tmp_path / "absent.sql"))


def test_markers_skip_quotes_comments_casts_and_paths() -> None:
    text = (
        "SELECT :a, ':b', `:c`, \":d\", x::INT, col:field, -- :e\n"
        "/* :f */ IDENTIFIER( :tbl ), :a_2 FROM t WHERE y=:g"
    )
    found = markers(text)
    assert [m.name for m in found] == ["a", "tbl", "a_2", "g"]
    call = next(m for m in found if m.name == "tbl").call
    assert call is not None
    assert text[call[0] : call[1]] == "IDENTIFIER( :tbl )"
    assert all(m.call is None for m in found if m.name != "tbl")


def test_queries_and_commands() -> None:
    assert is_query("  select 1")
    assert is_query("WITH a AS (SELECT 1) SELECT * FROM a")
    assert is_query("(SELECT 1)")
    assert not is_query("INSERT INTO t SELECT :a")
    assert not is_query("CREATE TABLE t AS SELECT 1")


@pytest.mark.parametrize(
    "value",
    [
        "'; DROP TABLE x; --",
        "back\\slash\\'",
        'dq"',
        "multi\nline\t",
        "ünïcødé 😀",
        "",
        "$${x}",
        "a' OR '1'='1",
    ],
)
def test_literal_has_no_character_that_could_end_it(value: str) -> None:
    literal = sql_literal(value)
    body = literal[1:-1]
    assert literal[0] == literal[-1] == "'"
    assert re.fullmatch(r"(?:[A-Za-z0-9 ]|\\u[0-9a-f]{4}|\\U[0-9a-f]{8})*", body), body
    decoded = re.sub(
        r"\\u([0-9a-f]{4})|\\U([0-9a-f]{8})", lambda m: chr(int(m.group(1) or m.group(2), 16)), body
    )
    assert decoded == value


def test_bind_inline_replaces_markers_and_identifiers() -> None:
    statement = "INSERT INTO IDENTIFIER(:tbl) VALUES (1, :note, ':note') -- :note"
    bound = bind_inline(statement, {"tbl": "workspace.`my s`.t_1", "note": "x'y"})
    assert bound == "INSERT INTO `workspace`.`my s`.`t_1` VALUES (1, 'x\\u0027y', ':note') -- :note"


def test_queries_keep_value_markers_for_spark_and_get_names_inline() -> None:
    statement = "SELECT * FROM identifier(:tbl) WHERE note = :note AND x = myidentifier(:note)"
    bound = bind_inline(statement, {"tbl": "c.s.t"}, literals=False)
    assert bound == "SELECT * FROM `c`.`s`.`t` WHERE note = :note AND x = myidentifier(:note)"
    assert [m.name for m in markers(bound)] == ["note", "note"]


def test_bind_inline_refuses_missing_parameters() -> None:
    with pytest.raises(SqlTaskError, match=r":nope, which the task does not define \(defined: a\)"):
        bind_inline("INSERT INTO t VALUES (:nope)", {"a": "1"})


@pytest.mark.parametrize(
    "name", ["t; DROP TABLE x", "a.b)", "`unclosed", "a..b", "", "a`b", "x y", "a.`b`c", "t --"]
)
def test_identifier_refuses_anything_but_a_name(name: str) -> None:
    with pytest.raises(SqlTaskError, match="is not a table or column name"):
        quote_identifier(name)


def test_identifier_quotes_every_part() -> None:
    assert quote_identifier("c.s.t") == "`c`.`s`.`t`"
    assert quote_identifier(" `a b`.c ") == "`a b`.`c`"


def test_jsonable_cells() -> None:
    assert jsonable(None) is None
    assert jsonable(3) == 3
    assert jsonable(1.5) == 1.5
    assert jsonable(float("nan")) == "nan"
    assert jsonable(decimal.Decimal("1.10")) == "1.10"
    assert jsonable(datetime.date(2026, 1, 2)) == "2026-01-02"
    assert jsonable(datetime.datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05"
    assert jsonable(b"\x00\xff") == "AP8="
    assert jsonable({"k": [decimal.Decimal("2"), (1, 2)]}) == {"k": ["2", [1, 2]]}
