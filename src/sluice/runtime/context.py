"""The attempt's context file: what the control plane tells a task process before it starts.

The engine passes a small context inline, as ``SLUICE_TASK_CONTEXT_JSON=<document>`` (with an
``attempt_dir`` key), and a large one as a file: ``<attempt_dir>/context.json`` written with
:func:`write_context`, named by ``SLUICE_TASK_CONTEXT=<path>``. The task side reads either with
:func:`current_context`. Schema (version 1)::

    {"version": 1, "job_id": 12, "job_run_id": 345, "task_key": "silver", "task_run_id": 678,
     "attempt_number": 0, "parameters": {"env": "dev"},
     "task_values": {"bronze": {"rows": 1000}}}      # one entry per visible upstream task

Other keys are kept (``TaskContext.raw``) for runtime parts that need more. Only the standard library is
imported here: task processes import this module.
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False  # typing is not imported at run time: this module is on every task's path
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

CONTEXT_ENV = "SLUICE_TASK_CONTEXT"
#: The context document itself, inline, when it is small (the engine then writes no file).
CONTEXT_JSON_ENV = "SLUICE_TASK_CONTEXT_JSON"
#: Contexts up to this size travel inline in the environment (an environment string may hold 128 KiB).
INLINE_LIMIT = 32 * 1024
CONTEXT_FILE = "context.json"
TASK_VALUES_FILE = "task_values.json"
CONTEXT_VERSION = 1
_REQUIRED = ("job_run_id", "task_key", "task_run_id")


class ContextError(Exception):
    """The context file is missing or malformed: a broken contract between control plane and task."""


class TaskContext:
    """The decoded context file; read-only."""

    __slots__ = (
        "attempt_dir",
        "attempt_number",
        "job_id",
        "job_run_id",
        "parameters",
        "path",
        "raw",
        "task_key",
        "task_run_id",
        "task_values",
    )

    def __init__(self, path: str, raw: Mapping[str, Any]) -> None:
        missing = [k for k in _REQUIRED if k not in raw]
        if missing:
            raise ContextError(f"task context {path} lacks {', '.join(missing)}")
        self.path = path
        self.raw = raw
        self.job_id: int | None = raw.get("job_id")
        self.job_run_id: int = raw["job_run_id"]
        self.task_key: str = raw["task_key"]
        self.task_run_id: int = raw["task_run_id"]
        self.attempt_number: int = raw.get("attempt_number", 0)
        self.parameters: Mapping[str, Any] = raw.get("parameters") or {}
        self.task_values: Mapping[str, Mapping[str, Any]] = raw.get("task_values") or {}
        #: Where this attempt's outputs go (``task_values.json`` ...): the context file's directory.
        self.attempt_dir: str = raw.get("attempt_dir") or os.path.dirname(os.path.abspath(path))

    def __repr__(self) -> str:
        return f"TaskContext(task_key={self.task_key!r}, task_run_id={self.task_run_id}, path={self.path!r})"


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as JSON so that readers see the old file or the new one, never a torn one."""
    target = os.fspath(path)
    tmp = f"{target}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_context(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Write a context file (the engine's side). ``data`` must hold job_run_id, task_key, task_run_id."""
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"task context for {os.fspath(path)} lacks {', '.join(missing)}")
    document = {"version": CONTEXT_VERSION, **data}
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
    write_json_atomic(path, document)


def read_context(path: str) -> TaskContext:
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise ContextError(f"{CONTEXT_ENV} names {path}, which does not exist") from None
    except ValueError as exc:
        raise ContextError(f"task context {path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ContextError(f"task context {path} must hold a JSON object")
    return TaskContext(path, raw)


_cache: dict[str, TaskContext] = {}


def context_document(data: Mapping[str, Any]) -> str:
    """The context as JSON text (the engine's side): inline in the environment when under INLINE_LIMIT."""
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"task context lacks {', '.join(missing)}")
    return json.dumps({"version": CONTEXT_VERSION, **data}, ensure_ascii=False, separators=(",", ":"))


def _inline_context(text: str) -> TaskContext:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ContextError(f"{CONTEXT_JSON_ENV} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or "attempt_dir" not in raw:
        raise ContextError(f"{CONTEXT_JSON_ENV} must hold a JSON object with attempt_dir")
    return TaskContext(os.path.join(raw["attempt_dir"], CONTEXT_FILE), raw)


def current_context() -> TaskContext | None:
    """This process's task context, or None outside a job (neither context variable set)."""
    path = os.environ.get(CONTEXT_ENV)
    if not path:
        inline = os.environ.get(CONTEXT_JSON_ENV)
        if not inline:
            return None
        found = _cache.get(CONTEXT_JSON_ENV)
        if found is None:
            found = _cache[CONTEXT_JSON_ENV] = _inline_context(inline)
        return found
    found = _cache.get(path)
    if found is None:
        found = _cache[path] = read_context(path)
    return found
