"""SQL statements Sluice answers itself, or rewrites, before they reach the Spark Connect server.

=====================================================  =============================================
statement                                              what happens
=====================================================  =============================================
``CREATE CATALOG [IF NOT EXISTS] c``                   recorded in the store (new sessions see it)
``CREATE SCHEMA|DATABASE [IF NOT EXISTS] [c.]s``       recorded in the store, then sent to the server
``CREATE [OR REPLACE] TABLE [IF NOT EXISTS] name ...`` ``USING delta`` and the table's ``LOCATION``
  without ``LOCATION``                                 added, sent; the table is recorded in the store
``CREATE VOLUME [IF NOT EXISTS] c.s.v``                the store and its directory (Sail: no parser)
``DESCRIBE HISTORY name``                              the Delta log read with ``deltalake``
``DROP TABLE [IF EXISTS] name``                        sent to the server; forgotten by the store,
                                                       a managed table's directory deleted
=====================================================  =============================================

Anything else goes to the server unchanged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from sluice.catalog.patches import ensure_schema, resolve_table
from sluice.catalog.session import sql_string
from sluice.errors import ConflictError, NotFoundError
from sluice.store.catalog import MANAGED, CatalogStore, check_name, split_name

_PART = r"(?:`[^`]+`|[A-Za-z0-9_]+)"
_NAME = rf"(?P<name>{_PART}(?:\.{_PART}){{0,2}})"
_COMMENT = r"(?:\s+COMMENT\s+'(?P<comment>(?:[^'\\]|\\.)*)')?"
_FLAGS = re.IGNORECASE | re.DOTALL
_CREATE_CATALOG = re.compile(
    rf"^CREATE\s+CATALOG\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?{_NAME}{_COMMENT}\s*$", _FLAGS
)
_CREATE_SCHEMA = re.compile(
    rf"^CREATE\s+(?:SCHEMA|DATABASE)\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?{_NAME}{_COMMENT}\s*$", _FLAGS
)
_CREATE_VOLUME = re.compile(
    rf"^CREATE\s+(?:MANAGED\s+)?VOLUME\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?{_NAME}{_COMMENT}\s*$", _FLAGS
)
_DESCRIBE_HISTORY = re.compile(
    rf"^(?:DESCRIBE|DESC)\s+HISTORY\s+{_NAME}(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$", _FLAGS
)
_DROP_TABLE = re.compile(rf"^DROP\s+TABLE\s+(?P<ie>IF\s+EXISTS\s+)?{_NAME}\s*$", _FLAGS)
_CREATE_TABLE = re.compile(
    rf"^CREATE\s+(?P<replace>OR\s+REPLACE\s+)?TABLE\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?{_NAME}(?P<rest>.*)$",
    _FLAGS,
)
_LEADING_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*\n|/\*.*?\*/)*", re.DOTALL)

Sql = Callable[..., Any]


def _clean(statement: str) -> str:
    return _LEADING_COMMENTS.sub("", statement).strip().rstrip(";").strip()


def intercept(session: Any, statement: str, catalog: CatalogStore, sql: Sql) -> Any | None:
    """The answer to ``statement`` when Sluice handles it, else None (send it to the server as is)."""
    text = _clean(statement)
    head = text[:40].upper()
    if not head.startswith(("CREATE", "DESC", "DROP")):
        return None
    for pattern, handler in _HANDLERS:
        match = pattern.match(text)
        if match is not None:
            return handler(session, match, catalog, sql)
    return None


def _now() -> int:
    return int(time.time() * 1000)


def _empty(session: Any, sql: Sql) -> Any:
    return sql(session, "SELECT 1 AS result WHERE false")


def _create_catalog(session: Any, match: re.Match[str], catalog: CatalogStore, sql: Sql) -> Any:
    name = check_name("catalog", match["name"])
    created = catalog.create_catalog(
        name, _now(), if_not_exists=bool(match["ine"]), comment=match["comment"] or ""
    )
    if not created and not match["ine"]:
        raise ConflictError(f"catalog '{name}' already exists")
    return _empty(session, sql)


def _schema_name(session: Any, name: str) -> tuple[str, str]:
    parts = [p.strip("`") for p in name.split(".")]
    if len(parts) == 1:
        parts = [str(session.catalog.currentCatalog()), parts[0]]
    if len(parts) != 2:
        raise NotFoundError(f"'{name}' is not a schema name: write <catalog>.<schema>")
    return check_name("catalog", parts[0]), check_name("schema", parts[1])


def _create_schema(session: Any, match: re.Match[str], catalog: CatalogStore, sql: Sql) -> Any:
    c, s = _schema_name(session, match["name"])
    created = catalog.create_schema(c, s, _now(), if_not_exists=True, comment=match["comment"] or "")
    if not created and not match["ine"]:
        raise ConflictError(
            f"[SCHEMA_ALREADY_EXISTS] schema '{c}.{s}' already exists; use CREATE SCHEMA IF NOT EXISTS"
        )
    return sql(session, f"CREATE SCHEMA IF NOT EXISTS `{c}`.`{s}`")


def _create_volume(session: Any, match: re.Match[str], catalog: CatalogStore, sql: Sql) -> Any:
    c, s = str(session.catalog.currentCatalog()), str(session.catalog.currentDatabase())
    c, s, v = split_name(match["name"], catalog=c, schema=s, kind="volume")
    _, created = catalog.create_volume(c, s, v, _now(), if_not_exists=True, comment=match["comment"] or "")
    if not created and not match["ine"]:
        raise ConflictError(f"volume '{c}.{s}.{v}' already exists; use CREATE VOLUME IF NOT EXISTS")
    return _empty(session, sql)


def _describe_history(session: Any, match: re.Match[str], catalog: CatalogStore, sql: Sql) -> Any:
    from sluice.catalog.tables import history  # imports deltalake

    c, s, t = resolve_table(session, match["name"])
    record = catalog.get_table(c, s, t)
    if record is None:
        raise NotFoundError(f"[TABLE_OR_VIEW_NOT_FOUND] table {c}.{s}.{t} is not in the catalog")
    rows = history(record.location, limit=int(match["limit"]) if match["limit"] else None)
    schema = "version BIGINT, timestamp TIMESTAMP, operation STRING, operationParameters STRING"
    if not rows:
        return session.createDataFrame([], schema)
    return session.createDataFrame(
        [(r["version"], r["timestamp"], r["operation"], r["operationParameters"]) for r in rows], schema
    )


def _drop_table(session: Any, match: re.Match[str], catalog: CatalogStore, sql: Sql) -> Any:
    c, s, t = resolve_table(session, match["name"])
    record = catalog.get_table(c, s, t)
    if record is None and not match["ie"]:
        return sql(session, f"DROP TABLE `{c}`.`{s}`.`{t}`")  # the server's own error (or a temp view)
    answer = sql(session, f"DROP TABLE IF EXISTS `{c}`.`{s}`.`{t}`")
    catalog.drop_table(c, s, t)
    return answer


_CLAUSE_BEFORE_QUERY = re.compile(r"\)?\s+AS\s*(?:SELECT|WITH|\(|VALUES|FROM|TABLE)\b", _FLAGS)


def _split_query(rest: str) -> tuple[str, str]:
    """``(definition, " AS <query>")`` of what follows a CREATE TABLE's name (top level ``AS`` only)."""
    depth = 0
    quote: str | None = None
    for i, ch in enumerate(rest):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and ch.isspace() and re.match(r"\s+AS\b", rest[i:], _FLAGS):
            return rest[:i], rest[i:]
    return rest, ""


def _create_table(session: Any, match: re.Match[str], catalog: CatalogStore, sql: Sql) -> Any | None:
    definition, query = _split_query(match["rest"])
    if re.search(r"\bLOCATION\s+'", definition, _FLAGS) or re.match(r"^\s*LIKE\b", definition, _FLAGS):
        return None  # an external table, or LIKE: the server's business
    c, s, t = resolve_table(session, match["name"])
    ensure_schema(session, catalog, c, s)
    record = catalog.get_table(c, s, t)
    location = record.location if record else str(catalog.table_location(c, s, t))
    using = re.search(r"\bUSING\s+([A-Za-z0-9_.]+)", definition, _FLAGS)
    fmt = using.group(1).lower() if using else "delta"
    if using is None:
        definition = _insert_using(definition)
    statement = (
        f"CREATE {'OR REPLACE ' if match['replace'] else ''}TABLE {'IF NOT EXISTS ' if match['ine'] else ''}"
        f"`{c}`.`{s}`.`{t}`{definition} LOCATION {sql_string(location)}{query}"
    )
    answer = sql(session, statement)
    catalog.put_table(
        c,
        s,
        t,
        location=location,
        now=_now(),
        data_source_format=fmt,
        table_type=record.table_type if record else MANAGED,
    )
    return answer


def _insert_using(definition: str) -> str:
    """``definition`` with ``USING delta`` after its column list (or at its start when it has none)."""
    stripped = definition.lstrip()
    if stripped.startswith("("):
        depth = 0
        offset = len(definition) - len(stripped)
        for i, ch in enumerate(stripped):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0:
                end = offset + i + 1
                return f"{definition[:end]} USING delta{definition[end:]}"
    return f" USING delta{definition}"


_HANDLERS: tuple[tuple[re.Pattern[str], Callable[..., Any]], ...] = (
    (_CREATE_CATALOG, _create_catalog),
    (_CREATE_SCHEMA, _create_schema),
    (_CREATE_VOLUME, _create_volume),
    (_DESCRIBE_HISTORY, _describe_history),
    (_DROP_TABLE, _drop_table),
    (_CREATE_TABLE, _create_table),
)
