"""``dbutils.notebook.entry_point.getDbutils().notebook().getContext()``: the notebook context.

On Databricks this is a Scala object reached through Py4J; code reads it with Scala idioms, which this
module mirrors: every accessor returns an :class:`Option` (``.get()``, ``.isDefined()``, ``.getOrElse(x)``)
and ``tags()`` a :class:`ScalaMap` (``.apply("user")``, ``.get("user").get()``).

What each field is in Sluice (from the task's context, ``docs/protocol.md``):

- ``notebookPath()``: the notebook task's file, without its extension (Databricks shows workspace paths
  without one); empty in a Python script task;
- ``userName()`` and ``tags().apply("user")``: who started the run (``creator_user_name``), else the
  operating-system user;
- ``currentRunId()``: ``RunId(<task run id>)`` (``.get().id()``); ``jobId()``: the job id as a string;
  tags ``jobId``, ``runId`` (task run), ``multitaskParentRunId`` and ``jobRunId`` (job run), ``jobName``;
- ``apiUrl()`` / ``apiToken()``: ``DATABRICKS_HOST`` / ``DATABRICKS_TOKEN`` of the task's environment,
  else empty. Under ``sluice serve`` the driver sets them: the server's URL and a token of the run, revoked
  when the run ends (``sluice.engine.driver``); ``sluice run`` has no API server, so there they are empty
  unless the task's environment has them; once read, the token is redacted from the task's output;
- ``toJson()``: Databricks' shape: ``{"rootRunId", "currentRunId": {"id"}, "tags": {...},
  "extraContext": {"notebook_path", "api_url", "api_token": "[REDACTED]"}, "credentialKeys"}``.

Only the standard library is imported here.
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False  # typing is not imported at run time: this module is on task paths
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any

NOTEBOOK_PATH_ENV = "SLUICE_NOTEBOOK_PATH"
_NOTEBOOK_SUFFIXES = (".ipynb", ".py", ".sql", ".scala", ".r", ".R")


class NoSuchElementException(LookupError):
    """Scala's ``java.util.NoSuchElementException``: ``None.get`` or a missing map key."""


class Option:
    """Scala's ``Option``: ``Some(value)`` or ``None``."""

    __slots__ = ("_value",)

    def __init__(self, value: Any = None) -> None:
        self._value = value

    def get(self) -> Any:
        if self._value is None:
            raise NoSuchElementException("None.get")
        return self._value

    def isDefined(self) -> bool:
        return self._value is not None

    def nonEmpty(self) -> bool:
        return self._value is not None

    def isEmpty(self) -> bool:
        return self._value is None

    def getOrElse(self, default: Any) -> Any:
        return default if self._value is None else self._value

    def __bool__(self) -> bool:
        return self._value is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Option) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "None" if self._value is None else f"Some({self._value})"

    __str__ = __repr__
    toString = __repr__


class ScalaMap:
    """Scala's immutable ``Map[String, String]``, as ``tags()`` returns it."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str]) -> None:
        self._items = dict(items)

    def apply(self, key: str) -> str:
        try:
            return self._items[key]
        except KeyError:
            raise NoSuchElementException(f"key not found: {key}") from None

    def get(self, key: str) -> Option:
        return Option(self._items.get(key))

    def getOrElse(self, key: str, default: Any) -> Any:
        return self._items.get(key, default)

    def contains(self, key: str) -> bool:
        return key in self._items

    def size(self) -> int:
        return len(self._items)

    def __getitem__(self, key: str) -> str:
        return self.apply(key)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return "Map(" + ", ".join(f"{k} -> {v}" for k, v in self._items.items()) + ")"


class RunId:
    """Databricks' ``RunId(id)`` (``currentRunId().get().id()``)."""

    __slots__ = ("_id",)

    def __init__(self, run_id: int) -> None:
        self._id = run_id

    def id(self) -> int:
        return self._id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunId) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __repr__(self) -> str:
        return f"RunId({self._id})"


def _notebook_path() -> str | None:
    path = os.environ.get(NOTEBOOK_PATH_ENV)
    if not path:
        return None
    for suffix in _NOTEBOOK_SUFFIXES:
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


class NotebookContext:
    """The notebook context (see the module docstring); values are read when it is created."""

    def __init__(self) -> None:
        from sluice.identity import local_user
        from sluice.runtime.context import current_context

        context = current_context()
        raw: Mapping[str, Any] = context.raw if context is not None else {}
        self._path = _notebook_path()
        self._user = str(raw.get("user_name") or local_user())
        self._api_url = os.environ.get("DATABRICKS_HOST") or None
        self._api_token = os.environ.get("DATABRICKS_TOKEN") or None
        self._run_id = context.task_run_id if context is not None else None
        self._job_id = context.job_id if context is not None else None
        tags = {"user": self._user}
        if context is not None:
            if context.job_id is not None:
                tags["jobId"] = str(context.job_id)
            tags["runId"] = str(context.task_run_id)
            tags["multitaskParentRunId"] = str(context.job_run_id)
            tags["jobRunId"] = str(context.job_run_id)
            if raw.get("job_name"):
                tags["jobName"] = str(raw["job_name"])
        self._tags = tags

    def notebookPath(self) -> Option:
        return Option(self._path)

    def userName(self) -> Option:
        return Option(self._user)

    def tags(self) -> ScalaMap:
        return ScalaMap(self._tags)

    def apiUrl(self) -> Option:
        return Option(self._api_url)

    def apiToken(self) -> Option:
        """The token; printed, it shows as ``[REDACTED]`` (as on Databricks)."""
        if self._api_token is not None:
            from sluice.runtime import redact

            redact.register(self._api_token)
        return Option(self._api_token)

    def currentRunId(self) -> Option:
        return Option(RunId(self._run_id) if self._run_id is not None else None)

    def rootRunId(self) -> Option:
        return Option(None)

    def jobId(self) -> Option:
        return Option(str(self._job_id) if self._job_id is not None else None)

    def toJson(self) -> str:
        extra: dict[str, str] = {}
        if self._path is not None:
            extra["notebook_path"] = self._path
        if self._api_url is not None:
            extra["api_url"] = self._api_url
        if self._api_token is not None:
            extra["api_token"] = "[REDACTED]"  # noqa: S105 - a placeholder, as Databricks shows it
        return json.dumps(
            {
                "rootRunId": None,
                "currentRunId": {"id": self._run_id} if self._run_id is not None else None,
                "jobGroup": None,
                "tags": self._tags,
                "extraContext": extra,
                "credentialKeys": [],
            }
        )

    def __repr__(self) -> str:
        return f"NotebookContext(notebookPath={self._path!r}, currentRunId={self._run_id})"


class _NotebookHandle:
    """``getDbutils().notebook()``."""

    def getContext(self) -> NotebookContext:
        return NotebookContext()


class _Dbutils:
    """``entry_point.getDbutils()``."""

    def notebook(self) -> _NotebookHandle:
        return _NotebookHandle()


class EntryPoint:
    """``dbutils.notebook.entry_point``."""

    def getDbutils(self) -> _Dbutils:
        return _Dbutils()


entry_point = EntryPoint()
