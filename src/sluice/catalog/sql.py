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
``DESCRIBE DETAIL name|'path'|delta.`path```          Delta's detail row, read with ``deltalake``
``DROP TABLE [IF EXISTS] name``                        sent to the server; forgotten by the store,
                                                       a managed table's directory deleted
``SET``, ``SET k``, ``SET k = v``                      the session's settings (``spark.conf``), answered
                                                       as Spark does: columns ``key``, ``value``
``USE [SCHEMA|DATABASE] [c.]s``                        ``USE CATALOG c`` then ``USE SCHEMA s`` (Sail parses
                                                       neither ``USE s`` nor ``USE SCHEMA c.s``)
``CREATE [OR REPLACE] [TEMPORARY] FUNCTION ...``       kept by Sluice (temporary: in the session;
``DROP [TEMPORARY] FUNCTION [IF EXISTS] name``         permanent: in the store), see
                                                       :mod:`sluice.catalog.functions`
=====================================================  =============================================

Before that, :func:`prepare` rewrites every statement's text (:mod:`sluice.catalog.sqltext`):

- ``${k}`` / ``${hiveconf:k}`` ... become the session setting ``k`` (Spark's variable substitution);
- calls of SQL functions are expanded into their bodies;
- ``delta.`/Volumes/...` `` (and ``csv``, ``parquet``, ``json``, ``text``, ``orc``, ``avro``,
  ``binaryFile``) get the local path of a ``/Volumes``, ``dbfs:`` or ``file:`` path; a path that does
  not exist is an error (``PATH_NOT_FOUND``) rather than an empty result;
- ``OPTIONS (path '/Volumes/...')`` of ``CREATE ... USING <format>`` gets the local path too;
- ``read_files('path', format => 'csv', header => true)`` becomes a temporary view over
  ``spark.read`` with those options.

Anything else goes to the server unchanged.
"""

from __future__ import annotations

import glob
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sluice.catalog import functions, sqltext
from sluice.catalog.patches import ensure_schema, local_read_path, resolve_table
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
_DESCRIBE_DETAIL = re.compile(
    rf"^(?:DESCRIBE|DESC)\s+DETAIL\s+(?:'(?P<path>(?:[^'\\]|\\.)*)'|delta\.`(?P<dpath>[^`]+)`|{_NAME})\s*$",
    _FLAGS,
)
_DROP_TABLE = re.compile(rf"^DROP\s+TABLE\s+(?P<ie>IF\s+EXISTS\s+)?{_NAME}\s*$", _FLAGS)
_CREATE_TABLE = re.compile(
    rf"^CREATE\s+(?P<replace>OR\s+REPLACE\s+)?TABLE\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?{_NAME}(?P<rest>.*)$",
    _FLAGS,
)
_CREATE_VIEW = re.compile(r"^CREATE\s+(?:OR\s+REPLACE\s+)?(?:GLOBAL\s+)?(?:TEMP(?:ORARY)?\s+)?VIEW\b", _FLAGS)
_LEADING_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*\n|/\*.*?\*/)*", re.DOTALL)

Sql = Callable[..., Any]


def _clean(statement: str) -> str:
    return _LEADING_COMMENTS.sub("", statement).strip().rstrip(";").strip()


def prepare(session: Any, statement: str, catalog: CatalogStore) -> str:
    """``statement`` with ``${...}`` substituted, SQL function calls expanded, file paths mapped and
    ``read_files`` calls as views."""
    text = statement
    if "${" in text:
        text = sqltext.substitute(text, dict(session.conf.getAll))
    if "(" in text and not functions.is_create(_clean(text)):
        text = functions.expand(text, _function_lookup(session, catalog))
    references = sqltext.file_references(text)
    if references:
        text = sqltext.replace_spans(
            text,
            [
                (r.start, r.end, f"{r.format}.{sqltext.quote_identifier(_local_file(r.path))}")
                for r in references
            ],
        )
    if "options" in text.lower():
        paths = sqltext.option_paths(text)
        # A view reads its path (a missing one is an error); a table's path may be where it will be written.
        mapped = _local_file if _CREATE_VIEW.match(_clean(text)) else local_read_path
        text = sqltext.replace_spans(
            text, [(r.start, r.end, sqltext.sql_string(mapped(r.path))) for r in paths]
        )
    if "read_files" in text.lower():
        calls = sqltext.read_files_calls(text)
        text = sqltext.replace_spans(text, [(c.start, c.end, _read_files_view(session, c)) for c in calls])
    return text


def _temporary_functions(session: Any) -> dict[str, functions.SqlFunction]:
    """The session's temporary SQL functions (kept on the session object: they end with it)."""
    found: dict[str, functions.SqlFunction] | None = getattr(session, "_sluice_sql_functions", None)
    if found is None:
        found = {}
        session._sluice_sql_functions = found
    return found


def _name_parts(name: str) -> list[str]:
    return [p.strip("`").lower() for p in name.split(".")]


def _function_lookup(session: Any, catalog: CatalogStore) -> Callable[[str], functions.SqlFunction | None]:
    """Resolves a called name: a temporary function (one-part names), else a function stored in the
    catalog (``c.s.f``, ``s.f`` in the current catalog, ``f`` in the current schema)."""
    temporary = _temporary_functions(session)
    stored: dict[tuple[str, str, str], str] | None = None
    namespace: tuple[str, str] | None = None

    def lookup(name: str) -> functions.SqlFunction | None:
        nonlocal stored, namespace
        parts = _name_parts(name)
        if len(parts) == 1 and parts[0] in temporary:
            return temporary[parts[0]]
        if stored is None:
            stored = {(c, s, f): d for c, s, f, d in catalog.list_functions()}
        if not stored or parts[-1] not in {key[2] for key in stored}:
            return None
        if len(parts) < 3:
            namespace = namespace or (
                str(session.catalog.currentCatalog()).lower(),
                str(session.catalog.currentDatabase()).lower(),
            )
            parts = [*namespace[: 3 - len(parts)], *parts]
        definition = stored.get((parts[0], parts[1], parts[2]))
        return functions.SqlFunction.from_json(definition) if definition else None

    return lookup


def _create_function(session: Any, statement: str, catalog: CatalogStore, sql: Sql) -> Any:
    create = functions.parse_create(statement)
    assert create is not None
    lookup = _function_lookup(session, catalog)
    # Checked now, as Spark does: the body with NULL arguments of the declared types must analyse.
    probe_args = ", ".join(f"CAST(NULL AS {p.type})" for p in create.function.parameters)
    probe = functions.expand(
        "SELECT __sluice_probe__(" + probe_args + ")",
        lambda name: create.function if name == "__sluice_probe__" else lookup(name),
    )
    try:
        sql(session, probe).schema  # noqa: B018 - analyses the body now
    except Exception as exc:
        raise sqltext.SqlTextError(
            f"CREATE FUNCTION {create.name}: the body does not analyse: {exc}"
        ) from None
    exists_message = (
        f"[ROUTINE_ALREADY_EXISTS] function {create.name} already exists; use CREATE OR REPLACE FUNCTION "
        "or CREATE FUNCTION IF NOT EXISTS"
    )
    if create.temporary:
        parts = _name_parts(create.name)
        if len(parts) != 1:
            raise sqltext.SqlTextError(
                f"CREATE TEMPORARY FUNCTION {create.name}: a temporary function's name has one part"
            )
        temporary = _temporary_functions(session)
        if parts[0] in temporary and not create.replace:
            if create.if_not_exists:
                return _empty(session, sql)
            raise ConflictError(exists_message)
        temporary[parts[0]] = create.function
        return _empty(session, sql)
    c, s = str(session.catalog.currentCatalog()), str(session.catalog.currentDatabase())
    c, s, f = split_name(create.name, catalog=c, schema=s, kind="function")
    if (c, s, f) in {(a, b, n) for a, b, n, _ in catalog.list_functions()} and not create.replace:
        if create.if_not_exists:
            return _empty(session, sql)
        raise ConflictError(exists_message)
    catalog.put_function(c, s, f, create.function.to_json(), _now())
    return _empty(session, sql)


def _drop_function(session: Any, statement: str, catalog: CatalogStore, sql: Sql) -> Any:
    drop = functions.parse_drop(statement)
    assert drop is not None
    parts = _name_parts(drop.name)
    temporary = _temporary_functions(session)
    if len(parts) == 1 and parts[0] in temporary:
        del temporary[parts[0]]
        return _empty(session, sql)
    dropped = False
    if not drop.temporary:
        c, s = str(session.catalog.currentCatalog()), str(session.catalog.currentDatabase())
        dropped = catalog.drop_function(*split_name(drop.name, catalog=c, schema=s, kind="function"))
    if not dropped and not drop.if_exists:
        raise NotFoundError(
            f"[ROUTINE_NOT_FOUND] function {drop.name} does not exist; use DROP FUNCTION IF EXISTS"
        )
    return _empty(session, sql)


def _local_file(path: str) -> str:
    """The local path of a path in SQL text; a local path that does not exist is an error, as on Spark."""
    local = local_read_path(path)
    missing = not glob.glob(local) if glob.has_magic(local) else not Path(local).exists()
    if local.startswith("/") and missing:
        raise NotFoundError(
            f"[PATH_NOT_FOUND] Path does not exist: {path}" + (f" (here: {local})" if local != path else "")
        )
    return local


def _read_files_view(session: Any, call: sqltext.ReadFilesCall) -> str:
    """A temporary view over ``spark.read`` with the call's options; its quoted name."""
    local = _local_file(call.path)

    def suffixes() -> list[str]:
        roots = [Path(p) for p in glob.glob(local)] if glob.has_magic(local) else [Path(local)]
        files = [f for r in roots for f in ([r] if r.is_file() else r.rglob("*")) if f.is_file()]
        return [p.suffix for p in files if not p.name.startswith(("_", "."))]

    fmt = sqltext.read_files_format(call, suffixes)
    options = {k: v for k, v in call.options.items() if k not in ("format", "schema")}
    if "inferColumnTypes" in options:
        options["inferSchema"] = options.pop("inferColumnTypes")
    if fmt in ("csv", "json"):
        options.setdefault("inferSchema", "true")  # read_files infers column types by default
    reader = session.read.format(fmt).options(**options)
    if call.options.get("schema"):
        reader = reader.schema(call.options["schema"])
    name = f"sluice_read_files_{uuid.uuid4().hex[:12]}"
    reader.load(local).createOrReplaceTempView(name)
    return sqltext.quote_identifier(name)


def intercept(session: Any, statement: str, catalog: CatalogStore, sql: Sql) -> Any | None:
    """The answer to ``statement`` when Sluice handles it, else None (send it to the server as is)."""
    text = _clean(statement)
    head = text[:40].upper()
    if head.startswith("SET") and (command := sqltext.parse_set(text)) is not None:
        return _set(session, command)
    if head.startswith("USE") and (use := sqltext.parse_use(text)) is not None:
        # Sail takes neither ``USE s`` nor a two-part ``USE SCHEMA c.s``: one statement per level.
        catalog_name, schema_name = use
        if catalog_name is not None:
            sql(session, f"USE CATALOG {sqltext.quote_identifier(catalog_name)}")
        return sql(session, f"USE SCHEMA {sqltext.quote_identifier(schema_name)}")
    if not head.startswith(("CREATE", "DESC", "DROP")):
        return None
    if functions.is_create(text):
        return _create_function(session, text, catalog, sql)
    if functions.parse_drop(text) is not None:
        return _drop_function(session, text, catalog, sql)
    for pattern, handler in _HANDLERS:
        match = pattern.match(text)
        if match is not None:
            return handler(session, match, catalog, sql)
    return None


def _set(session: Any, command: sqltext.SetCommand) -> Any:
    """``SET`` (every setting), ``SET k`` (one, ``<undefined>`` when not set), ``SET k = v`` (set it)."""
    if command.key is None:
        rows = sorted((str(k), str(v)) for k, v in dict(session.conf.getAll).items())
    elif command.value is None:
        rows = [(command.key, str(session.conf.get(command.key, "<undefined>")))]
    else:
        session.conf.set(command.key, command.value)
        rows = [(command.key, command.value)]
    return session.createDataFrame(rows, "key STRING, value STRING")


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


#: DESCRIBE DETAIL's columns, as Delta answers them.
DETAIL_SCHEMA = (
    "format STRING, id STRING, name STRING, description STRING, location STRING, createdAt TIMESTAMP, "
    "lastModified TIMESTAMP, partitionColumns ARRAY<STRING>, clusteringColumns ARRAY<STRING>, "
    "numFiles BIGINT, sizeInBytes BIGINT, properties MAP<STRING, STRING>, minReaderVersion INT, "
    "minWriterVersion INT, tableFeatures ARRAY<STRING>, statistics MAP<STRING, BIGINT>"
)


def _describe_detail(session: Any, match: re.Match[str], catalog: CatalogStore, sql: Sql) -> Any:
    from sluice.catalog.tables import detail  # imports deltalake

    name, given = None, ""
    if match["name"]:
        c, s, t = resolve_table(session, match["name"])
        record = catalog.get_table(c, s, t)
        if record is None:
            raise NotFoundError(f"[TABLE_OR_VIEW_NOT_FOUND] table {c}.{s}.{t} is not in the catalog")
        if record.data_source_format != "delta":
            raise NotFoundError(
                f"DESCRIBE DETAIL {c}.{s}.{t}: the table is {record.data_source_format}, not Delta; Sluice "
                "describes Delta tables only"
            )
        location, name = record.location, f"{c}.{s}.{t}"
    else:
        given = match["path"] if match["path"] is not None else match["dpath"]
        given = given.replace("\\'", "'")
        location = _local_file(given)
    if not (Path(location) / "_delta_log").is_dir():
        raise NotFoundError(
            f"[DELTA_MISSING_DELTA_TABLE] {name or given} is not a Delta table (no _delta_log)"
        )
    row = detail(location)
    row["name"] = name
    return session.createDataFrame([tuple(row.values())], DETAIL_SCHEMA)


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
    (_DESCRIBE_DETAIL, _describe_detail),
    (_DROP_TABLE, _drop_table),
    (_CREATE_TABLE, _create_table),
)
