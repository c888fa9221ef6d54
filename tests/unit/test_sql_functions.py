"""SQL functions as text: ``CREATE FUNCTION`` parsed, calls expanded into their bodies, and the catalog's
stored definitions (SQLite store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.catalog.functions import Parameter, SqlFunction, expand, parse_create, parse_drop
from sluice.catalog.sqltext import SqlTextError
from sluice.store.catalog import CatalogStore
from sluice.store.store import Store


def test_parse_create_reads_parameters_defaults_type_and_body() -> None:
    create = parse_create(
        "CREATE OR REPLACE FUNCTION workspace.fx.to_f(c DOUBLE COMMENT 'celsius', digits INT DEFAULT 1) "
        "RETURNS DECIMAL(10, 2) LANGUAGE SQL COMMENT 'C to F' DETERMINISTIC "
        "RETURN round(c * 9 / 5 + 32, digits)"
    )
    assert create is not None
    assert (create.name, create.replace, create.temporary, create.if_not_exists) == (
        "workspace.fx.to_f",
        True,
        False,
        False,
    )
    assert create.function == SqlFunction(
        (Parameter("c", "DOUBLE"), Parameter("digits", "INT", "1")),
        "DECIMAL(10, 2)",
        "round(c * 9 / 5 + 32, digits)",
    )
    assert SqlFunction.from_json(create.function.to_json()) == create.function
    temp = parse_create("CREATE TEMP FUNCTION IF NOT EXISTS f() RETURNS STRING RETURN 'x'")
    assert temp is not None
    assert (temp.temporary, temp.if_not_exists, temp.function.parameters) == (True, True, ())
    assert parse_create("CREATE TABLE f(x INT)") is None


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (
            "CREATE FUNCTION t(x INT) RETURNS TABLE (a INT) RETURN SELECT x",
            "table functions are not supported",
        ),
        ("CREATE FUNCTION p(x INT) RETURNS INT LANGUAGE PYTHON AS $$ return x $$", "spark.udf.register"),
        ("CREATE FUNCTION n(x INT) RETURNS INT", "end with RETURN"),
        ("CREATE FUNCTION q(x) RETURNS INT RETURN x", "not '<name> <type>'"),
    ],
)
def test_parse_create_refuses_what_sluice_cannot_run(statement: str, message: str) -> None:
    with pytest.raises(SqlTextError, match=message):
        parse_create(statement)


def test_parse_drop() -> None:
    drop = parse_drop("DROP TEMPORARY FUNCTION IF EXISTS f")
    assert drop is not None
    assert (drop.name, drop.temporary, drop.if_exists) == ("f", True, True)
    assert parse_drop("DROP TABLE f") is None


PLUS = SqlFunction((Parameter("x", "INT"), Parameter("y", "INT", "10")), "BIGINT", "x + y + length('x')")


def test_expand_replaces_calls_with_bodies_arguments_in_parentheses() -> None:
    functions = {"plus": PLUS, "fx.twice": SqlFunction((Parameter("v", "INT"),), "INT", "plus(v, v)")}
    text = "SELECT plus(a, 2) AS p, FX.twice(plus(1)) AS t, 'plus(1)' AS s -- plus(9)\nFROM t"
    assert expand(text, lambda name: functions.get(name.lower())) == (
        "SELECT CAST(((a) + (2) + length('x')) AS BIGINT) AS p, "
        "CAST((CAST((((CAST(((1) + (10) + length('x')) AS BIGINT))) + "
        "((CAST(((1) + (10) + length('x')) AS BIGINT))) "
        "+ length('x')) AS BIGINT)) AS INT) AS t, 'plus(1)' AS s -- plus(9)\nFROM t"
    )


def test_expand_names_argument_mistakes_and_endless_recursion() -> None:
    with pytest.raises(SqlTextError, match=r"the argument x is missing"):
        expand("SELECT plus()", {"plus": PLUS}.get)
    with pytest.raises(SqlTextError, match=r"takes 2 argument\(s\), 3 given"):
        expand("SELECT plus(1, 2, 3)", {"plus": PLUS}.get)
    loop = SqlFunction((), "INT", "loop()")
    with pytest.raises(SqlTextError, match="call itself"):
        expand("SELECT loop()", {"loop": loop}.get)


def test_catalog_stores_functions(tmp_path: Path) -> None:
    with Store.open(None, tmp_path) as store:
        catalog = CatalogStore.of(store, tmp_path)
        catalog.create_schema("workspace", "fx", 1)
        catalog.put_function("workspace", "fx", "Plus", PLUS.to_json(), 2)
        catalog.put_function("workspace", "fx", "plus", PLUS.to_json(), 3)  # replaced, not doubled
        assert catalog.list_functions() == [("workspace", "fx", "plus", PLUS.to_json())]
        assert catalog.drop_function("workspace", "fx", "PLUS") is True
        assert catalog.drop_function("workspace", "fx", "plus") is False
        assert catalog.list_functions() == []


def test_expand_leaves_names_that_are_not_calls() -> None:
    known = {"t": PLUS, "people": PLUS}
    text = "INSERT INTO people (x, y) SELECT * FROM VALUES (1, 2) AS t(x, y) JOIN people (x)"
    assert expand(text, known.get) == text
