"""SQL tasks (``sql_task``): a ``.sql`` file's statements through the run's ``spark``, parameters bound.

The task process runs every statement of the file in order through :func:`sluice.runtime.spark.get_spark`
(so the store's catalog and its SQL interception apply, as in a notebook's ``%sql`` cell). The task's
parameters (``sql_task.parameters`` with the job parameters pushed down over them) arrive as the context's
``parameters`` and are bound to the ``:name`` markers of each statement:

- a **query** (``SELECT``, ``WITH``, ``VALUES``, ``FROM``, ``TABLE``) gets them as Spark Connect named
  parameters (``spark.sql(text, args=...)``);
- a **command** (``CREATE``, ``INSERT``, ``MERGE`` ...) cannot take ``args`` on Sail ("command with
  parameters"), and Sluice answers some commands itself; so markers are bound by :func:`bind_inline`: each
  ``:name`` becomes a string literal whose every character other than letters, digits and spaces is a
  ``\\uXXXX`` escape (the literal holds no quote, backslash-quote or semicolon: a value can never end it);
- in both, each ``IDENTIFIER(:name)`` becomes a back-quoted, validated qualified name (Sail takes
  ``IDENTIFIER`` with a parameter only in some places).

Markers inside string literals, quoted identifiers and comments are text, as in Databricks.

``spark.sql`` itself (:mod:`sluice.catalog.sql`) then answers ``SET``, substitutes ``${k}`` from the session's
settings, maps file paths and expands SQL functions; a bound value is never substituted into (a command's
literal holds ``$`` as an escape, a query's value travels as an argument).

The last statement's result (first :data:`ROW_LIMIT` rows) is written to ``sql_output.json`` in the attempt
directory; the engine keeps it as the task run's ``sql_output`` (``runs get-output``) and downstream tasks
read it as ``{{tasks.<key>.output.rows}}`` / ``{{tasks.<key>.output.first_row.<col>}}``.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import math
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sluice.catalog.sqltext import skip_quoted
from sluice.notebooks.magics import split_sql

#: The file the task writes its last statement's result to (docs/protocol.md).
OUTPUT_FILE = "sql_output.json"
#: Rows of the last statement's result kept as the task's output.
ROW_LIMIT = 1000

_QUERY_HEADS = ("SELECT", "WITH", "VALUES", "FROM", "TABLE", "(")
_NAME = re.compile(r"[A-Za-z_]\w*")
_IDENTIFIER_CALL = re.compile(r"\bIDENTIFIER\s*\(\s*$", re.IGNORECASE)
_SAFE_CHAR = re.compile(r"[A-Za-z0-9 ]")
_PLAIN_PART = re.compile(r"[A-Za-z0-9_]+")


class SqlTaskError(Exception):
    """The SQL file cannot run as written (unreadable, a parameter missing, a bad identifier)."""


@dataclass(frozen=True)
class Marker:
    """A ``:name`` parameter marker outside quotes and comments."""

    name: str
    start: int
    end: int
    #: For ``IDENTIFIER(:name)``: the span of the whole call, replaced as one.
    call: tuple[int, int] | None = None


def markers(statement: str) -> list[Marker]:
    """The parameter markers of one statement, in order (``::`` casts and quoted text are not markers)."""
    found: list[Marker] = []
    i = 0
    while i < len(statement):
        char = statement[i]
        if char in "'\"`":
            i = skip_quoted(statement, i)
        elif statement.startswith("--", i):
            end = statement.find("\n", i)
            i = len(statement) if end < 0 else end
        elif statement.startswith("/*", i):
            end = statement.find("*/", i + 2)
            i = len(statement) if end < 0 else end + 2
        elif char == ":" and _marker_start(statement, i) and (name := _NAME.match(statement, i + 1)):
            found.append(Marker(name.group(), i, name.end(), _identifier_call(statement, i, name.end())))
            i = name.end()
        else:
            i += 1
    return found


def _marker_start(statement: str, i: int) -> bool:
    """Not the second colon of a ``::`` cast, nor ``a:b`` (a JSON path or map access)."""
    before = statement[i - 1] if i > 0 else " "
    return not (before in ":\\_" or before.isalnum())


def _identifier_call(statement: str, start: int, end: int) -> tuple[int, int] | None:
    before = _IDENTIFIER_CALL.search(statement[:start])
    if before is None:
        return None
    after = re.compile(r"\s*\)").match(statement, end)
    return (before.start(), after.end()) if after else None


def is_query(statement: str) -> bool:
    """Whether Spark Connect takes ``args`` for it: a query, not a command."""
    return statement.lstrip().upper().startswith(_QUERY_HEADS)


def sql_literal(value: str) -> str:
    """``value`` as a SQL string literal made of letters, digits, spaces and ``\\u``/``\\U`` escapes only."""
    parts = []
    for char in value:
        if _SAFE_CHAR.fullmatch(char):
            parts.append(char)
        elif ord(char) <= 0xFFFF:
            parts.append(f"\\u{ord(char):04x}")
        else:
            parts.append(f"\\U{ord(char):08x}")
    return "'" + "".join(parts) + "'"


def quote_identifier(value: str) -> str:
    """A qualified name (``c.s.t``, parts may be back-quoted) as back-quoted parts; anything else refused."""
    parts: list[str] = []
    for raw in _name_parts(value):
        if not raw or "`" in raw or any(ord(c) < 32 for c in raw):
            raise SqlTaskError(
                f"IDENTIFIER(...) got {value!r}, which is not a table or column name: use names such as "
                "'catalog.schema.table' (parts of letters, digits and underscores, or back-quoted)"
            )
        parts.append(f"`{raw}`")
    return ".".join(parts)


def _name_parts(value: str) -> Iterator[str]:
    i = 0
    text = value.strip()
    while i <= len(text):
        if text.startswith("`", i):
            end = text.find("`", i + 1)
            if end < 0:
                yield ""
                return
            yield text[i + 1 : end]
            i = end + 1
        else:
            match = _PLAIN_PART.match(text, i)
            yield match.group() if match else ""
            i = match.end() if match else len(text) + 1
        if i < len(text) and text[i] != ".":
            yield ""
            return
        i += 1


def bind_inline(statement: str, values: Mapping[str, str], *, literals: bool = True) -> str:
    """The statement with every ``IDENTIFIER(:name)`` replaced by a quoted name and, with ``literals``, every
    other marker by a safe literal."""
    out: list[str] = []
    last = 0
    for marker in markers(statement):
        if marker.call is None and not literals:
            continue
        value = _value(marker.name, values)
        if marker.call is not None:
            start, end = marker.call
            text = quote_identifier(value)
        else:
            start, end = marker.start, marker.end
            text = sql_literal(value)
        out.append(statement[last:start])
        out.append(text)
        last = end
    out.append(statement[last:])
    return "".join(out)


#: What to do about a marker without a value, as :func:`run_statement` says it (sql_task's wording).
_DEFINE_IN_TASK = "add it to sql_task.parameters or to the job's parameters"


def _value(name: str, values: Mapping[str, str], fix: str = _DEFINE_IN_TASK) -> str:
    if name not in values:
        known = ", ".join(sorted(values)) or "none"
        raise SqlTaskError(
            f"the statement uses the parameter :{name}, which the task does not define (defined: {known}); "
            f"{fix}"
        )
    return values[name]


def run_statement(
    spark: Any, statement: str, values: Mapping[str, str], *, fix: str = _DEFINE_IN_TASK
) -> Any:
    """One statement through ``spark.sql`` with its parameters bound; its DataFrame.

    Shared by sql_task and a notebook's ``%sql`` cells (``fix`` says how to define a missing parameter).
    """
    if not markers(statement):
        return spark.sql(statement)
    for marker in markers(statement):
        _value(marker.name, values, fix)  # a missing value is named before anything runs
    if not is_query(statement):
        return spark.sql(bind_inline(statement, values))
    # Names everywhere Sail takes a qualified name; values as the query's named parameters.
    text = bind_inline(statement, values, literals=False)
    used = markers(text)
    return spark.sql(text, args={m.name: values[m.name] for m in used}) if used else spark.sql(text)


def jsonable(value: Any) -> Any:
    """A result cell as JSON: numbers, strings, booleans and null as they are; others as text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (decimal.Decimal, datetime.date, datetime.time, datetime.timedelta)):
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    as_dict = getattr(value, "asDict", None)
    return jsonable(as_dict(recursive=True)) if callable(as_dict) else str(value)


def result_output(df: Any, limit: int = ROW_LIMIT) -> dict[str, Any]:
    """``sql_output`` of a DataFrame: its columns, first ``limit`` rows as ``{column: value}``, truncation."""
    fields = df.schema.fields
    rows = df.limit(limit + 1).collect()
    names = [f.name for f in fields]
    return {
        "columns": [{"name": f.name, "type": f.dataType.simpleString()} for f in fields],
        "rows": [{n: jsonable(v) for n, v in zip(names, tuple(row), strict=False)} for row in rows[:limit]],
        "truncated": len(rows) > limit,
    }


def read_statements(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise SqlTaskError(f"SQL file '{path}' cannot be read: {exc}") from None
    statements = split_sql(text)
    if not statements:
        raise SqlTaskError(f"SQL file '{path}' has no statements")
    return statements


def run(path: str, attempt_dir: str) -> int:
    """The task: every statement of ``path`` in order; the last one's result to ``sql_output.json``."""
    from sluice.runtime.context import current_context, write_json_atomic
    from sluice.runtime.spark import get_spark

    statements = read_statements(path)
    context = current_context()
    values = {str(k): str(v) for k, v in (context.parameters if context else {}).items()}
    spark = get_spark()
    result: Any = None
    for number, statement in enumerate(statements, 1):
        first_line = statement.splitlines()[0][:100]
        print(f"[{number}/{len(statements)}] {first_line}", flush=True)
        result = run_statement(spark, statement, values)
        if number < len(statements) and result is not None:
            result.schema  # noqa: B018 - analyses the query now: a bad middle SELECT fails the task
    output = result_output(result) if result is not None else {"columns": [], "rows": [], "truncated": False}
    write_json_atomic(os.path.join(attempt_dir, OUTPUT_FILE), output)
    sys.stdout.flush()
    return 0
