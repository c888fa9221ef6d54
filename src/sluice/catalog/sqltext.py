"""Pure rewriting of SQL text before it reaches the Spark Connect server (no session, no I/O).

- :func:`substitute`: Spark's variable substitution (``spark.sql.variable.substitute``): ``${k}``,
  ``${hiveconf:k}``, ``${hivevar:k}``, ``${spark:k}`` and ``${sparkconf:k}`` become the value of the
  session setting ``k`` (set by ``SET k = v`` or ``spark.conf.set``); unknown names stay as written, as in
  Spark. Like Spark, this is text substitution: it applies inside string literals too.
- :func:`parse_set`: ``SET``, ``SET -v``, ``SET k`` and ``SET k = v`` (Spark's session settings).
- :func:`file_references`: ``delta.`/path` ``, ``csv.`...` ``, ``parquet.`...` `` ... in FROM clauses.
- :func:`read_files_calls`: ``read_files('path', name => value, ...)`` table-valued function calls.

Quoted text and comments are skipped by every scan except :func:`substitute`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

_FLAGS_DOTALL = re.IGNORECASE | re.DOTALL
_VAR = re.compile(r"\$\{(?:(?:hiveconf|hivevar|spark|sparkconf):)?(?P<name>[^${}:\s]+)\}")
#: The Spark setting that turns substitution off (``SET spark.sql.variable.substitute = false``).
SUBSTITUTE_KEY = "spark.sql.variable.substitute"
#: The data source names Spark reads as ``<format>.`<path>` `` in a FROM clause.
FILE_FORMATS = ("delta", "csv", "parquet", "json", "text", "orc", "avro", "binaryfile")


class SqlTextError(ValueError):
    """The SQL text uses a form Sluice cannot run; the message names it and the fix."""


def substitute(text: str, settings: Mapping[str, str]) -> str:
    """``text`` with ``${name}`` (and its ``hiveconf:``/``hivevar:``/``spark:``/``sparkconf:`` forms)
    replaced by the session setting ``name``; names not set stay as written."""
    if "${" not in text or settings.get(SUBSTITUTE_KEY, "true").strip().lower() == "false":
        return text
    return _VAR.sub(lambda m: settings.get(m["name"], m.group(0)), text)


@dataclass(frozen=True)
class SetCommand:
    """A parsed ``SET``: ``key`` None lists the settings; ``value`` None reads one."""

    key: str | None = None
    value: str | None = None


_SET = re.compile(r"^SET(?:\s+(?P<rest>.*))?$", re.IGNORECASE | re.DOTALL)
_SET_ASSIGN = re.compile(r"^(?P<key>`[^`]+`|[^\s=`]+)\s*=\s*(?P<value>.*)$", re.DOTALL)
_SET_READ = re.compile(r"^(?P<key>`[^`]+`|[^\s=`]+)$")
#: ``SET <word> ...`` statements that are not session settings (the server's own).
_TIME_ZONE = re.compile(r"^TIME\s+ZONE\s+(?P<zone>'[^']*'|\"[^\"]*\")$", re.IGNORECASE)
TIME_ZONE_KEY = "spark.sql.session.timeZone"
_NOT_SETTINGS = {"VAR", "VARIABLE", "CATALOG", "SCHEMA", "DATABASE", "TIME", "ROLE"}


def parse_set(statement: str) -> SetCommand | None:
    """The ``SET`` statement's meaning, or None when ``statement`` is no settings ``SET`` (such as
    ``SET TIME ZONE 'UTC'`` or ``SET VAR x = 1``, which go to the server)."""
    match = _SET.match(statement.strip())
    if match is None:
        return None
    rest = (match["rest"] or "").strip()
    if rest in ("", "-v"):
        return SetCommand()
    if zone := _TIME_ZONE.match(rest):
        return SetCommand(TIME_ZONE_KEY, unquote(zone["zone"]) or "")
    if assign := _SET_ASSIGN.match(rest):
        return SetCommand(assign["key"].strip("`"), assign["value"].strip())
    read = _SET_READ.match(rest)
    if read is None or read["key"].upper() in _NOT_SETTINGS:
        return None
    return SetCommand(read["key"].strip("`"))


_USE = re.compile(
    r"^USE\s+(?:(?:SCHEMA|DATABASE|NAMESPACE)\s+)?(?P<name>(?:`[^`]+`|[\w-]+)(?:\.(?:`[^`]+`|[\w-]+))?)$",
    re.IGNORECASE,
)


def parse_use(statement: str) -> tuple[str | None, str] | None:
    """``(catalog or None, schema)`` of ``USE [SCHEMA|DATABASE|NAMESPACE] [catalog.]schema``; None for any
    other statement (``USE CATALOG c`` included, which the server takes as it is)."""
    match = _USE.match(statement.strip())
    if match is None or match["name"].upper() == "CATALOG":
        return None
    parts = [p.strip("`") for p in re.findall(r"`[^`]+`|[\w-]+", match["name"])]
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


# ------------------------------------------------------------------------------------- scanning SQL text


def skip_quoted(text: str, i: int) -> int:
    """Index after the literal or quoted identifier starting at ``text[i]``."""
    quote = text[i]
    i += 1
    while i < len(text):
        if text[i] == "\\" and quote != "`":
            i += 2
            continue
        if text[i] == quote:
            if quote == "`" and text.startswith("``", i):
                i += 2
                continue
            return i + 1
        i += 1
    return len(text)


def _tokens(text: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, kind)`` of each quoted span (kind ``'``, ``"`` or `````) and each code character
    (kind ``""``), comments left out."""
    i = 0
    while i < len(text):
        char = text[i]
        if char in "'\"`":
            end = skip_quoted(text, i)
            yield i, end, char
            i = end
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
        else:
            yield i, i + 1, ""
            i += 1


@dataclass(frozen=True)
class FileReference:
    """``<format>.`<path>` `` at ``text[start:end]``."""

    start: int
    end: int
    format: str
    path: str


_FORMAT_BEFORE = re.compile(r"(?:^|[^\w.`])(?P<format>[A-Za-z]+)\.$")


def file_references(text: str) -> list[FileReference]:
    """The ``<format>.`<path>` `` references of ``text`` whose path looks like a path (has a ``/``)."""
    found = []
    for start, end, kind in _tokens(text):
        if kind != "`":
            continue
        before = _FORMAT_BEFORE.search(text, max(0, start - 20), start)
        path = text[start + 1 : end - 1].replace("``", "`")
        if before and before["format"].lower() in FILE_FORMATS and "/" in path:
            found.append(FileReference(before.start("format"), end, before["format"].lower(), path))
    return found


_OPTIONS = re.compile(r"(?<![\w.`])OPTIONS\s*\(", re.IGNORECASE)
_PATH_OPTION = re.compile(r"^(?:path|'path'|\"path\"|`path`)\s*=?\s*(?P<value>'.*'|\".*\")$", _FLAGS_DOTALL)


def option_paths(text: str) -> list[FileReference]:
    """The ``path '<p>'`` (or ``'path' = '<p>'``) options of ``OPTIONS (...)`` clauses (``CREATE ... USING
    csv OPTIONS (path '/Volumes/...', header 'true')``); each span is the string literal."""
    positions = code_positions(text)
    found = []
    for match in _OPTIONS.finditer(text):
        if match.start() not in positions:
            continue
        args, _end = _arguments(text, match.end() - 1, "OPTIONS (...)")
        search_from = match.end()
        for arg in args:
            at = text.index(arg, search_from)
            search_from = at + len(arg)
            option = _PATH_OPTION.match(arg)
            if option is None or (path := unquote(option["value"])) is None:
                continue
            start = at + option.start("value")
            found.append(FileReference(start, start + len(option["value"]), "", path))
    return found


def sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def replace_spans(text: str, replacements: list[tuple[int, int, str]]) -> str:
    """``text`` with each ``(start, end, new)`` span replaced (spans in order, not overlapping)."""
    out, last = [], 0
    for start, end, new in replacements:
        out.append(text[last:start])
        out.append(new)
        last = end
    out.append(text[last:])
    return "".join(out)


def quote_identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


# ------------------------------------------------------------------------------------------- read_files


@dataclass(frozen=True)
class ReadFilesCall:
    """``read_files(...)`` at ``text[start:end]``: its path and its named options (values as text)."""

    start: int
    end: int
    path: str
    options: dict[str, str]


_READ_FILES = re.compile(r"(?<![\w.`])read_files\s*\(", re.IGNORECASE)
_NAMED = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*=>\s*(?P<value>.+)$", re.DOTALL)
_BARE = re.compile(r"^(?:true|false|-?\d+(?:\.\d+)?)$", re.IGNORECASE)


def unquote(literal: str) -> str | None:
    """The value of a SQL string literal (``'...'`` or ``"..."``), or None when ``literal`` is none."""
    if len(literal) < 2 or literal[0] not in "'\"" or literal[-1] != literal[0]:
        return None
    if skip_quoted(literal, 0) != len(literal):
        return None
    body, quote = literal[1:-1], literal[0]
    out, i = [], 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append(escapes.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out).replace(quote * 2, quote)


def _arguments(text: str, open_at: int, what: str = "read_files(...)") -> tuple[list[str], int]:
    """The top-level, comma-separated arguments of the call whose ``(`` is at ``open_at``; the index after
    its ``)``."""
    args: list[str] = []
    depth, begin = 0, open_at + 1
    for start, end, kind in _tokens(text[open_at:]):
        char = text[open_at + start] if not kind else ""
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(text[begin : open_at + start])
                return [a.strip() for a in args if a.strip()], open_at + end
        elif char == "," and depth == 1:
            args.append(text[begin : open_at + start])
            begin = open_at + end
    raise SqlTextError(f"{what} has no closing parenthesis")


def arguments(text: str, open_at: int, what: str) -> tuple[list[str], int]:
    """The top-level arguments of the call whose ``(`` is at ``text[open_at]``, and the index after its
    ``)``; ``what`` names the call in the error when it has no ``)``."""
    return _arguments(text, open_at, what)


def code_positions(text: str) -> set[int]:
    """The indexes of ``text`` outside quotes and comments."""
    return {start for start, _end, kind in _tokens(text) if not kind}


def read_files_calls(text: str) -> list[ReadFilesCall]:
    """The ``read_files`` calls of ``text`` outside quotes and comments, in order."""
    code = set()
    for start, _end, kind in _tokens(text):
        if not kind:
            code.add(start)
    calls = []
    for match in _READ_FILES.finditer(text):
        if match.start() not in code:
            continue
        args, end = _arguments(text, match.end() - 1)
        if not args or (path := unquote(args[0])) is None:
            raise SqlTextError(
                "read_files(...) needs the path as its first argument, a string literal: "
                "read_files('/Volumes/<catalog>/<schema>/<volume>/<file>', format => 'csv')"
            )
        options: dict[str, str] = {}
        for arg in args[1:]:
            named = _NAMED.match(arg)
            if named is None:
                raise SqlTextError(
                    f"read_files(...): the argument {arg} is not supported: after the path, Sluice takes "
                    "named options only, such as format => 'csv', header => true"
                )
            raw = named["value"].strip()
            value = unquote(raw)
            if value is None and _BARE.match(raw):
                value = raw.lower()
            if value is None:
                raise SqlTextError(
                    f"read_files(...): the option {named['name']} => {raw} is not supported: "
                    "give a string, number or true/false literal"
                )
            options[named["name"]] = value
        calls.append(ReadFilesCall(match.start(), end, path, options))
    return calls


#: read_files' format of a file extension, when ``format`` is not given.
EXTENSION_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".txt": "text",
    ".orc": "orc",
    ".avro": "avro",
}


def read_files_format(call: ReadFilesCall, suffixes: Callable[[], list[str]]) -> str:
    """The format ``call`` reads: its ``format`` option, else the one the files' extensions name."""
    given = call.options.get("format")
    if given:
        return given.lower()
    found = {EXTENSION_FORMATS.get(s.lower()) for s in suffixes()}
    if len(found) == 1 and None not in found:
        return str(found.pop())
    raise SqlTextError(
        f"read_files('{call.path}'): say which format to read with format => 'csv' (or 'json', 'parquet', "
        "'text', 'orc', 'avro'); Sluice infers it only from files sharing one known extension"
    )
