"""``dbutils.jobs.taskValues``: small JSON values a task hands to the tasks downstream of it.

In a job (a task process with a context file) ``set`` persists every value at once, atomically, to
``<attempt_dir>/task_values.json`` (all values set so far), so a value set before a crash is kept; ``get``
reads the upstream values the control plane put in the context when the task started. Outside a job
``set`` only validates and ``get`` returns ``debugValue``, like ``databricks-sdk``'s local ``dbutils``.
"""

from __future__ import annotations

import json
import os
import sys

from sluice.runtime.context import TASK_VALUES_FILE, current_context, write_json_atomic

TYPE_CHECKING = False  # typing is not imported at run time: this module is on every task's path
if TYPE_CHECKING:
    from typing import Any

    from sluice.runtime.context import TaskContext

#: Databricks' limit on one value, as JSON.
MAX_VALUE_BYTES = 48 * 1024
_MISSING = object()


def encode_value(key: object, value: Any) -> str:
    """The JSON text of a task value; TypeError/ValueError naming the key when it cannot be one."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"task value key must be a non-empty string, not {key!r}")
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"task value '{key}' must be JSON-serialisable (str, int, float, bool, None, list, dict): {exc}"
        ) from None
    size = len(text.encode("utf-8"))
    if size > MAX_VALUE_BYTES:
        raise ValueError(
            f"task value '{key}' is {size:,} bytes as JSON; the limit is {MAX_VALUE_BYTES:,} bytes (48 KiB). "
            f"Store large data in a table or a volume file and pass its name instead."
        )
    return text


def read_values(attempt_dir: str) -> dict[str, Any]:
    """The task values an attempt has set so far (``{}`` when it set none)."""
    try:
        with open(os.path.join(attempt_dir, TASK_VALUES_FILE), encoding="utf-8") as f:
            values = json.load(f)
    except FileNotFoundError:
        return {}
    return values if isinstance(values, dict) else {}


class TaskValues:
    """``dbutils.jobs.taskValues`` (Databricks' camelCase names on purpose)."""

    def set(self, key: str, value: Any) -> None:
        """Set ``key`` for the current task run; JSON-serialisable, at most 48 KiB as JSON."""
        text = encode_value(key, value)
        context = current_context()
        if context is None:
            return  # outside a job there is nobody to hand the value to (databricks-sdk does the same)
        value = json.loads(text)
        redaction = sys.modules.get("sluice.runtime.redact")  # loaded once the task read a secret
        if redaction is not None:  # a value holding a secret is stored, and handed on, redacted
            value = redaction.redact_value(value)
        _persist(context, redaction.redact(key) if redaction is not None else key, value)

    def get(self, taskKey: str, key: str, default: Any = None, debugValue: Any = None) -> Any:
        """The value ``key`` set by upstream task ``taskKey``; ``default`` when it was not set.

        Outside a job returns ``debugValue`` (a TypeError when it is None, as in databricks-sdk).
        """
        context = current_context()
        if context is None:
            if debugValue is None:
                raise TypeError(
                    "Must pass debugValue when calling get outside of a job context. "
                    "debugValue cannot be None."
                )
            return debugValue
        values = _visible_values(context, taskKey)
        found = _MISSING if values is None else values.get(key, _MISSING)
        if found is not _MISSING:
            return found
        if default is not None:
            return default
        if values is None:
            known = ", ".join(sorted(context.task_values)) or "none"
            raise ValueError(
                f"no task '{taskKey}' among the upstream tasks of '{context.task_key}' (known: {known}); "
                f"task values are visible to tasks that depend on the task setting them"
            )
        known = ", ".join(sorted(values)) or "none"
        raise ValueError(
            f"task '{taskKey}' did not set a task value '{key}' (it set: {known}); "
            f"pass default= to get a fallback"
        )


def _visible_values(context: TaskContext, task_key: str) -> dict[str, Any] | None:
    if task_key == context.task_key:
        return read_values(context.attempt_dir)  # a task may read back what it set itself
    values = context.task_values.get(task_key)
    return dict(values) if values is not None else None


def _persist(context: TaskContext, key: str, value: Any) -> None:
    """Read-modify-write ``task_values.json`` under a lock (forked workers of one task may all set)."""
    import fcntl

    os.makedirs(context.attempt_dir, exist_ok=True)
    lock_path = os.path.join(context.attempt_dir, TASK_VALUES_FILE + ".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        values = read_values(context.attempt_dir)
        values[key] = value
        write_json_atomic(os.path.join(context.attempt_dir, TASK_VALUES_FILE), values)


class JobsUtil:
    """``dbutils.jobs``."""

    def __init__(self) -> None:
        self.taskValues = TaskValues()
