"""SQL functions (``CREATE [OR REPLACE] [TEMPORARY] FUNCTION f(x INT) RETURNS INT RETURN x + 1``).

Sail does not parse ``CREATE FUNCTION``, and the Spark Connect protocol has no way to define a SQL
function, so Sluice keeps the definitions and expands each call in the SQL text before it reaches the
server: ``f(a)`` becomes ``CAST((a + 1) AS INT)`` — the body, each parameter replaced by its argument in
parentheses, cast to the declared type. Temporary functions live in the Spark session (the task's or
notebook's process); permanent ones are stored in the store's catalog (``catalog_functions``) and every
later task can call them by ``catalog.schema.f``, ``schema.f`` or, in the current schema, ``f``.

Parsing and expansion here are pure text work (:func:`parse_create`, :func:`expand`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from sluice.catalog.sqltext import SqlTextError, arguments, code_positions

_PART = r"(?:`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)"
_NAME = rf"{_PART}(?:\.{_PART}){{0,2}}"
_FLAGS = re.IGNORECASE | re.DOTALL
_CREATE = re.compile(
    r"^CREATE\s+(?P<replace>OR\s+REPLACE\s+)?(?P<temp>TEMP(?:ORARY)?\s+)?FUNCTION\s+"
    rf"(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<name>{_NAME})\s*\(",
    _FLAGS,
)
_DROP = re.compile(
    rf"^DROP\s+(?P<temp>TEMP(?:ORARY)?\s+)?FUNCTION\s+(?P<ie>IF\s+EXISTS\s+)?(?P<name>{_NAME})\s*$", _FLAGS
)
_RETURN = re.compile(r"\bRETURN\b", re.IGNORECASE)
_CHARACTERISTIC = re.compile(
    r"\s(?:LANGUAGE|COMMENT|NOT\s+DETERMINISTIC|DETERMINISTIC|CONTAINS\s+SQL|READS\s+SQL|SQL\s+SECURITY)\b",
    re.IGNORECASE,
)
_PARAMETER = re.compile(
    r"^(?P<name>[A-Za-z_]\w*)\s+(?P<type>.+?)(?:\s+DEFAULT\s+(?P<default>.+?))?(?:\s+COMMENT\s+'.*')?$",
    _FLAGS,
)
_CALL = re.compile(rf"(?<![\w.`])(?P<name>{_NAME})\s*\(")
_WORD = re.compile(r"(?<![\w.`$])(?P<word>[A-Za-z_]\w*)(?![\w`])(?!\s*\()")
#: A name after one of these words is a table, view, alias or column list, not a function call.
_NOT_A_CALL_AFTER = re.compile(
    r"(?<![\w.`])(?:AS|INTO|TABLE|VIEW|FUNCTION|EXISTS|JOIN|FROM|UPDATE|USING|REFERENCES)\s*$", re.IGNORECASE
)
#: Expansions of one statement at most (a function calling itself would never end).
MAX_EXPANSIONS = 200


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: str | None = None


@dataclass(frozen=True)
class SqlFunction:
    """A SQL function's definition: parameters, declared result type and body expression."""

    parameters: tuple[Parameter, ...]
    returns: str
    body: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "parameters": [[p.name, p.type, p.default] for p in self.parameters],
                "returns": self.returns,
                "body": self.body,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SqlFunction:
        data = json.loads(text)
        params = tuple(
            Parameter(str(n), str(t), None if d is None else str(d)) for n, t, d in data["parameters"]
        )
        return cls(params, str(data["returns"]), str(data["body"]))


@dataclass(frozen=True)
class CreateFunction:
    name: str
    function: SqlFunction
    replace: bool
    temporary: bool
    if_not_exists: bool


@dataclass(frozen=True)
class DropFunction:
    name: str
    temporary: bool
    if_exists: bool


def is_create(statement: str) -> bool:
    return _CREATE.match(statement) is not None


def parse_create(statement: str) -> CreateFunction | None:
    """The ``CREATE FUNCTION`` statement's definition; None when it is none; SqlTextError for a form
    Sluice cannot run (naming it)."""
    head = _CREATE.match(statement)
    if head is None:
        return None
    name = head["name"]
    params_text, after = arguments(statement, head.end() - 1, f"CREATE FUNCTION {name}(...)")
    rest = statement[after:].strip()
    if not re.match(r"^RETURNS\s", rest, re.IGNORECASE):
        raise SqlTextError(
            f"CREATE FUNCTION {name}: write RETURNS <type> RETURN <expression> after the parameters"
        )
    rest = rest[len("RETURNS") :]
    if re.match(r"^\s*TABLE\b", rest, re.IGNORECASE):
        raise SqlTextError(
            f"CREATE FUNCTION {name} ... RETURNS TABLE: SQL table functions are not supported by Sluice; "
            "use a view (CREATE OR REPLACE TEMPORARY VIEW) instead"
        )
    if re.search(r"\bLANGUAGE\s+(?!SQL\b)\w+", rest, re.IGNORECASE):
        raise SqlTextError(
            f"CREATE FUNCTION {name}: only LANGUAGE SQL functions are supported; register a Python function "
            "with spark.udf.register(...) in a Python cell instead"
        )
    positions = code_positions(rest)
    returns_at = next((m for m in _RETURN.finditer(rest) if m.start() in positions), None)
    if returns_at is None:
        raise SqlTextError(f"CREATE FUNCTION {name}: the body is missing: end with RETURN <expression>")
    declared = rest[: returns_at.start()]
    characteristic = _CHARACTERISTIC.search(declared)
    returns = (declared[: characteristic.start()] if characteristic else declared).strip()
    body = rest[returns_at.end() :].strip()
    if not returns or not body:
        raise SqlTextError(f"CREATE FUNCTION {name}: write RETURNS <type> RETURN <expression>")
    parameters = []
    for text in params_text:
        match = _PARAMETER.match(text)
        if match is None:
            raise SqlTextError(f"CREATE FUNCTION {name}: the parameter '{text}' is not '<name> <type>'")
        parameters.append(Parameter(match["name"].lower(), match["type"].strip(), match["default"]))
    function = SqlFunction(tuple(parameters), returns, body)
    return CreateFunction(name, function, bool(head["replace"]), bool(head["temp"]), bool(head["ine"]))


def parse_drop(statement: str) -> DropFunction | None:
    match = _DROP.match(statement)
    if match is None:
        return None
    return DropFunction(match["name"], bool(match["temp"]), bool(match["ie"]))


def _bind(function: SqlFunction, name: str, args: list[str]) -> str:
    """The body with each parameter replaced by its argument, cast to the declared type."""
    if len(args) > len(function.parameters):
        raise SqlTextError(f"{name}(...) takes {len(function.parameters)} argument(s), {len(args)} given")
    values: dict[str, str] = {}
    for i, parameter in enumerate(function.parameters):
        if i < len(args):
            values[parameter.name] = args[i]
        elif parameter.default is not None:
            values[parameter.name] = parameter.default
        else:
            raise SqlTextError(f"{name}(...): the argument {parameter.name} is missing (it has no DEFAULT)")
    positions = code_positions(function.body)
    body = _WORD.sub(
        lambda m: (
            f"({values[m['word'].lower()]})"
            if m.start() in positions and m["word"].lower() in values
            else m.group(0)
        ),
        function.body,
    )
    return f"CAST(({body}) AS {function.returns})"


def expand(text: str, lookup: Callable[[str], SqlFunction | None]) -> str:
    """``text`` with every call of a SQL function ``lookup`` knows replaced by its expanded body (calls
    inside bodies too)."""
    for _ in range(MAX_EXPANSIONS):
        positions = code_positions(text)
        for match in _CALL.finditer(text):
            if match.start() not in positions or _NOT_A_CALL_AFTER.search(
                text, max(0, match.start() - 20), match.start()
            ):
                continue
            function = lookup(match["name"])
            if function is None:
                continue
            args, end = arguments(text, match.end() - 1, f"{match['name']}(...)")
            text = text[: match.start()] + _bind(function, match["name"], args) + text[end:]
            break
        else:
            return text
    raise SqlTextError(f"SQL functions expanded more than {MAX_EXPANSIONS} times: does one call itself?")
