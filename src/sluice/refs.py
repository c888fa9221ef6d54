"""Dynamic value references: ``{{job.run_id}}``, ``{{tasks.a.values.x}}``, ``{{input}}`` ...

Pure functions, no I/O and no clock: every time value comes in through :class:`RefContext`.

Databricks' rules, reproduced here:

* A reference is ``{{ path }}`` where ``path`` is dot-separated identifiers (letters, digits, ``_``) or
  back-quoted names (``{{job.parameters.`my-param`}}``); whitespace inside the braces is allowed.
* Text that is not a reference (syntax errors, unknown namespaces such as ``{{foo.bar}}``) stays literal.
* A reference inside a *known* namespace (``job``, ``task``, ``tasks``, ``input``, ``workspace``,
  ``backfill``) that names an unknown thing is a validation error: :func:`check_references`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from sluice.errors import SluiceError

_SEGMENT = r"(?:[A-Za-z0-9_]+|`[^`{}]+`)"
#: One reference: ``{{`` optional blanks, a dotted path, optional blanks, ``}}``.
REFERENCE_RE = re.compile(r"\{\{\s*(" + _SEGMENT + r"(?:\." + _SEGMENT + r")*)\s*\}\}")
_SEGMENT_RE = re.compile(_SEGMENT)

#: ``<arg>`` of ``{{job.start_time.<arg>}}``, ``{{job.trigger.time.<arg>}}`` and ``{{backfill.<arg>}}``.
TIME_ARGS: tuple[str, ...] = (
    "iso_weekday",
    "is_weekday",
    "iso_date",
    "iso_datetime",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "timestamp_ms",
)
_TIME_ARGS = frozenset(TIME_ARGS)

#: Deprecated single-word references that Databricks still resolves.
LEGACY_NAMES: tuple[str, ...] = (
    "job_id",
    "run_id",
    "parent_run_id",
    "start_date",
    "start_time",
    "task_retry_count",
    "task_key",
)
_LEGACY = frozenset(LEGACY_NAMES)

KNOWN_NAMESPACES = frozenset({"job", "task", "tasks", "input", "workspace", "backfill"})

_JOB_FIELDS = ("id", "name", "run_id", "repair_count")
_JOB_HELP = (
    "job has id, name, run_id, repair_count, start_time.<time arg>, trigger.type, trigger.time.<time arg>, "
    "trigger.file_arrival.location, trigger.table_update.updated_tables, parameters.<name>"
)
_TASK_FIELDS = ("name", "run_id", "execution_count", "notebook_path")
_TASK_HELP = "task has name, run_id, execution_count, notebook_path"
_TASKS_FIELDS = ("run_id", "result_state", "execution_count", "error_code")
_TASKS_HELP = (
    "tasks.<task_key> has run_id, result_state, execution_count, error_code, values.<name>, "
    "output.rows, output.first_row, output.first_row.<column>"
)
_WORKSPACE_FIELDS = ("id", "url")
_TIME_HELP = "time arguments are " + ", ".join(TIME_ARGS)


class ReferenceResolutionError(SluiceError):
    """A reference that cannot be resolved at run time (a task value never set, a task not finished ...)."""


@dataclass(frozen=True, slots=True)
class Reference:
    """One ``{{ ... }}`` occurrence: its exact text, its path (back-quotes removed) and its span."""

    text: str
    path: tuple[str, ...]
    start: int
    end: int

    @property
    def namespace(self) -> str:
        return self.path[0]


def _split_path(raw: str) -> tuple[str, ...]:
    return tuple(s[1:-1] if s[0] == "`" else s for s in _SEGMENT_RE.findall(raw))


def find_references(text: str) -> list[Reference]:
    """Every syntactically valid reference in ``text``, known namespace or not, in order."""
    if "{{" not in text:
        return []
    return [
        Reference(m.group(0), _split_path(m.group(1)), m.start(), m.end())
        for m in REFERENCE_RE.finditer(text)
    ]


def referenced_tasks(text: str) -> set[str]:
    """Task keys named by ``{{tasks.<key>...}}`` references (for "must be an upstream task" checks)."""
    return {r.path[1] for r in find_references(text) if r.path[0] == "tasks" and len(r.path) > 1}


# --------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefScope:
    """What a reference in one field of one task may name."""

    task_keys: frozenset[str]
    parameter_names: frozenset[str]
    in_for_each: bool = False


def _closest(word: str, choices: frozenset[str] | tuple[str, ...]) -> str:
    import difflib  # only on the error path

    found = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean '{found[0]}'?)" if found else ""


def _check_time(path: tuple[str, ...], depth: int) -> bool:
    return len(path) == depth + 1 and path[depth] in _TIME_ARGS


def _check_job(ref: Reference, scope: RefScope) -> str | None:
    p = ref.path
    n = len(p)
    if n == 2 and p[1] in _JOB_FIELDS:
        return None
    if n >= 2 and p[1] == "start_time":
        return None if _check_time(p, 2) else f"unknown reference {ref.text}: {_TIME_HELP}"
    if n >= 2 and p[1] == "parameters":
        if n != 3:
            return f"unknown reference {ref.text}: use {{{{job.parameters.<name>}}}}"
        if p[2] in scope.parameter_names:
            return None
        defined = ", ".join(sorted(scope.parameter_names)) or "none"
        return (
            f"unknown reference {ref.text}: the job defines no parameter '{p[2]}'"
            f"{_closest(p[2], scope.parameter_names)}; defined parameters: {defined}"
        )
    if n >= 3 and p[1] == "trigger":
        if _trigger_ok(p):
            return None
        if p[2] == "time":
            return f"unknown reference {ref.text}: {_TIME_HELP}"
    return f"unknown reference {ref.text}: {_JOB_HELP}"


def _trigger_ok(p: tuple[str, ...]) -> bool:
    kind = p[2]
    if kind == "type":
        return len(p) == 3
    if kind == "time":
        return _check_time(p, 3)
    if kind == "file_arrival":
        return p[3:] == ("location",)
    if kind == "table_update":
        rest = p[3:]
        return rest == ("updated_tables",) or (len(rest) == 2 and rest[1] in ("version", "commit_timestamp"))
    return False


def _check_tasks(ref: Reference, scope: RefScope) -> str | None:
    p = ref.path
    if len(p) < 3:
        return f"unknown reference {ref.text}: {_TASKS_HELP}"
    key = p[1]
    if key not in scope.task_keys:
        return f"unknown reference {ref.text}: the job has no task '{key}'{_closest(key, scope.task_keys)}"
    what = p[2:]
    if len(what) == 1 and what[0] in _TASKS_FIELDS:
        return None
    if what[0] == "values" and len(what) == 2:
        return None
    if what[0] == "output" and (what[1:] == ("rows",) or (len(what) in (2, 3) and what[1] == "first_row")):
        return None
    return f"unknown reference {ref.text}: {_TASKS_HELP}"


def _check_one(ref: Reference, scope: RefScope) -> str | None:
    p = ref.path
    head = p[0]
    if head == "job":
        return _check_job(ref, scope)
    if head == "tasks":
        return _check_tasks(ref, scope)
    if head == "input":
        if not scope.in_for_each:
            return f"{ref.text} is only available in the task of a for_each_task"
        ok = len(p) <= 2
        hint = "use {{input}} or {{input.<field>}}"
    elif head == "task":
        ok = len(p) == 2 and p[1] in _TASK_FIELDS
        hint = _TASK_HELP
    elif head == "workspace":
        ok = len(p) == 2 and p[1] in _WORKSPACE_FIELDS
        hint = "workspace has id, url"
    else:  # backfill
        ok = _check_time(p, 1)
        hint = "backfill has " + ", ".join(TIME_ARGS)
    return None if ok else f"unknown reference {ref.text}: {hint}"


def check_references(text: str, scope: RefScope) -> list[str]:
    """Messages for references that name unknown things inside known namespaces; [] when all is well.

    Unknown namespaces and malformed braces are literal text (as on Databricks) and produce no message.
    """
    if "{{" not in text:
        return []
    out: list[str] = []
    for ref in find_references(text):
        if ref.path[0] in KNOWN_NAMESPACES:
            msg = _check_one(ref, scope)
            if msg is not None:
                out.append(msg)
    return out


# --------------------------------------------------------------------------------------------------------
# Resolution
# --------------------------------------------------------------------------------------------------------

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


@dataclass(frozen=True, slots=True)
class TaskRefInfo:
    """What ``{{tasks.<key>...}}`` may read about a finished upstream task."""

    run_id: int
    result_state: str | None = None
    execution_count: int = 1
    error_code: str | None = None
    #: Task values set with ``dbutils.jobs.taskValues.set`` (JSON-compatible Python values).
    values: Mapping[str, Any] = field(default_factory=_empty)
    #: SQL task output: ``rows`` (a list of ``{column: value}``) and optionally ``first_row``.
    output: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class RefContext:
    """Everything resolution needs; times are epoch milliseconds (UTC), passed in by the caller."""

    job_id: int
    job_name: str
    run_id: int
    start_time_ms: int
    task_key: str
    task_run_id: int
    repair_count: int = 0
    trigger_type: str = "ONE_TIME"
    #: Scheduled fire time for cron runs; None means "same as start_time_ms".
    trigger_time_ms: int | None = None
    file_arrival_location: str | None = None
    #: ``{table name: (version, commit timestamp ms)}`` for table-update triggers.
    table_updates: Mapping[str, tuple[int, int]] = field(default_factory=_empty)
    job_parameters: Mapping[str, str] = field(default_factory=_empty)
    execution_count: int = 1
    #: Retries of this task so far (0 on the first attempt): legacy ``{{task_retry_count}}``.
    retry_count: int = 0
    #: Start of this task attempt, for legacy ``{{start_date}}``/``{{start_time}}``; None: the job start.
    task_start_time_ms: int | None = None
    notebook_path: str | None = None
    tasks: Mapping[str, TaskRefInfo] = field(default_factory=_empty)
    input: Any = None
    has_input: bool = False
    workspace_id: str = "0"
    workspace_url: str = ""
    #: Start of the backfill window; None: not a backfill, the trigger time is used.
    backfill_time_ms: int | None = None


def format_value(value: Any) -> str:
    """A task value / for-each element as text: str as-is, bool true/false, everything else compact JSON."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def format_time(ms: int, arg: str) -> str:
    """One time argument of an epoch-millisecond instant in UTC.

    ``iso_datetime`` follows ``java.time.Instant.toString`` (``2024-05-01T06:00:00Z``, with ``.123`` when the
    milliseconds are not zero); numeric parts are not zero-padded; ``iso_weekday`` is 1 (Monday) .. 7.
    """
    if arg == "timestamp_ms":
        return str(ms)
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if arg == "iso_date":
        return dt.strftime("%Y-%m-%d")
    if arg == "iso_datetime":
        frac = ms % 1000
        base = dt.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{base}.{frac:03d}Z" if frac else f"{base}Z"
    if arg == "iso_weekday":
        return str(dt.isoweekday())
    if arg == "is_weekday":
        return "true" if dt.isoweekday() <= 5 else "false"
    if arg in ("year", "month", "day", "hour", "minute", "second"):
        return str(getattr(dt, arg))
    raise ReferenceResolutionError(f"unknown time argument '{arg}': {_TIME_HELP}")


def _fail(ref: Reference, why: str) -> ReferenceResolutionError:
    return ReferenceResolutionError(f"cannot resolve {ref.text}: {why}")


def _resolve_legacy(name: str, ctx: RefContext) -> str:
    task_start = ctx.task_start_time_ms if ctx.task_start_time_ms is not None else ctx.start_time_ms
    if name == "job_id":
        return str(ctx.job_id)
    if name == "run_id":
        return str(ctx.task_run_id)
    if name == "parent_run_id":
        return str(ctx.run_id)
    if name == "start_date":
        return format_time(task_start, "iso_date")
    if name == "start_time":
        return str(task_start)
    if name == "task_retry_count":
        return str(ctx.retry_count)
    return ctx.task_key


def _resolve_job(ref: Reference, ctx: RefContext) -> str:
    p = ref.path
    simple = {"id": ctx.job_id, "name": ctx.job_name, "run_id": ctx.run_id, "repair_count": ctx.repair_count}
    if len(p) == 2 and p[1] in simple:
        return str(simple[p[1]])
    if len(p) == 3 and p[1] == "start_time" and p[2] in _TIME_ARGS:
        return format_time(ctx.start_time_ms, p[2])
    if len(p) == 3 and p[1] == "parameters":
        if p[2] not in ctx.job_parameters:
            raise _fail(ref, f"the run has no job parameter '{p[2]}'")
        return ctx.job_parameters[p[2]]
    if len(p) >= 3 and p[1] == "trigger" and _trigger_ok(p):
        return _resolve_trigger(ref, ctx)
    raise _fail(ref, _JOB_HELP)


def _resolve_trigger(ref: Reference, ctx: RefContext) -> str:
    p = ref.path
    kind = p[2]
    if kind == "type":
        return str(ctx.trigger_type).lower()
    if kind == "time":
        when = ctx.trigger_time_ms if ctx.trigger_time_ms is not None else ctx.start_time_ms
        return format_time(when, p[3])
    if kind == "file_arrival":
        return ctx.file_arrival_location or ""
    if p[3] == "updated_tables":
        return format_value(sorted(ctx.table_updates))
    if p[3] not in ctx.table_updates:
        raise _fail(ref, f"table '{p[3]}' was not updated by the trigger of this run")
    version, commit_ms = ctx.table_updates[p[3]]
    return str(version if p[4] == "version" else commit_ms)


def _resolve_tasks(ref: Reference, ctx: RefContext) -> str:
    p = ref.path
    if len(p) < 3:
        raise _fail(ref, _TASKS_HELP)
    info = ctx.tasks.get(p[1])
    if info is None:
        raise _fail(ref, f"task '{p[1]}' has not finished in this run; it must be an upstream dependency")
    what = p[2:]
    if what == ("run_id",):
        return str(info.run_id)
    if what == ("result_state",):
        return info.result_state or ""
    if what == ("execution_count",):
        return str(info.execution_count)
    if what == ("error_code",):
        return info.error_code or ""
    if what[0] == "values" and len(what) == 2:
        if what[1] not in info.values:
            raise _fail(ref, f"task '{p[1]}' did not set the task value '{what[1]}'")
        return format_value(info.values[what[1]])
    if what[0] == "output" and len(what) >= 2:
        return _resolve_output(ref, info)
    raise _fail(ref, _TASKS_HELP)


def _resolve_output(ref: Reference, info: TaskRefInfo) -> str:
    what = ref.path[3:]
    rows = info.output.get("rows")
    if what == ("rows",) and rows is not None:
        return format_value(rows)
    if what[0] == "first_row" and len(what) <= 2:
        first = info.output.get("first_row")
        if first is None and rows:
            first = rows[0]
        if first is None:
            raise _fail(ref, f"task '{ref.path[1]}' has no output rows")
        if len(what) == 1:
            return format_value(first)
        if what[1] not in first:
            raise _fail(ref, f"the first output row of task '{ref.path[1]}' has no column '{what[1]}'")
        return format_value(first[what[1]])
    if what == ("rows",):
        raise _fail(ref, f"task '{ref.path[1]}' has no SQL output")
    raise _fail(ref, _TASKS_HELP)


def _resolve_other(ref: Reference, ctx: RefContext) -> str:
    p = ref.path
    head = p[0]
    if head == "task" and len(p) == 2 and p[1] in _TASK_FIELDS:
        values = {
            "name": ctx.task_key,
            "run_id": str(ctx.task_run_id),
            "execution_count": str(ctx.execution_count),
            "notebook_path": ctx.notebook_path or "",
        }
        return values[p[1]]
    if head == "workspace" and len(p) == 2 and p[1] in _WORKSPACE_FIELDS:
        return ctx.workspace_id if p[1] == "id" else ctx.workspace_url
    if head == "backfill" and _check_time(p, 1):
        when = ctx.backfill_time_ms
        if when is None:
            when = ctx.trigger_time_ms if ctx.trigger_time_ms is not None else ctx.start_time_ms
        return format_time(when, p[1])
    if head == "input" and len(p) <= 2:
        return _resolve_input(ref, ctx)
    raise _fail(ref, "not a known reference")


def _resolve_input(ref: Reference, ctx: RefContext) -> str:
    if not ctx.has_input:
        raise _fail(ref, "{{input}} is only available in the task of a for_each_task")
    if len(ref.path) == 1:
        return format_value(ctx.input)
    name = ref.path[1]
    if not isinstance(ctx.input, Mapping) or name not in ctx.input:
        raise _fail(ref, f"the current for-each input {format_value(ctx.input)} has no field '{name}'")
    return format_value(ctx.input[name])


def resolve_reference(ref: Reference, ctx: RefContext) -> str | None:
    """The text of one reference, or None when it is not a reference Sluice knows (left literal)."""
    head = ref.path[0]
    if len(ref.path) == 1 and head in _LEGACY:
        return _resolve_legacy(head, ctx)
    if head not in KNOWN_NAMESPACES:
        return None
    if head == "job":
        return _resolve_job(ref, ctx)
    if head == "tasks":
        return _resolve_tasks(ref, ctx)
    return _resolve_other(ref, ctx)


def resolve(text: str, ctx: RefContext) -> str:
    """``text`` with every reference replaced; unknown namespaces and malformed braces stay literal.

    Raises ReferenceResolutionError naming the reference when a known reference cannot be resolved
    (a task value never set, a task not finished, a field outside the namespace).
    """
    if "{{" not in text:
        return text

    def _sub(m: re.Match[str]) -> str:
        ref = Reference(m.group(0), _split_path(m.group(1)), m.start(), m.end())
        value = resolve_reference(ref, ctx)
        return m.group(0) if value is None else value

    return REFERENCE_RE.sub(_sub, text)
