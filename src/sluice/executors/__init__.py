"""Executors run task attempts as OS processes; the control plane never runs user code itself.

The vocabulary every executor shares lives here: what to launch (:class:`LaunchSpec`), what came of it
(:class:`Exited`) and the :class:`Executor` protocol the engine drives from one thread. The local
implementation is :class:`sluice.executors.local.LocalExecutor` (a pre-warmed fork server); the task
side of the contract is documented in ``docs/protocol.md``.

This module imports nothing heavy: task processes and the run loop import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

#: Seconds between SIGTERM and SIGKILL when a task is killed and no grace is given.
DEFAULT_KILL_GRACE = 5.0

#: Environment variable whose value marks every process of one attempt (``<executor token>.<attempt id>``);
#: processes that left the attempt's process group are found by it and killed.
PROCESS_TAG_ENV = "SLUICE_PROCESS_TAG"
#: Environment variable naming the directory ``%run`` and ``dbutils.notebook.run`` may open notebooks in
#: (the git checkout or the job's base directory; docs/guide/notebooks.md).
WORKSPACE_ROOT_ENV = "SLUICE_WORKSPACE_ROOT"
#: Width of the attempt id in the tag (zero-padded); the zygote carries this placeholder instead.
TAG_WIDTH = 20
TAG_PLACEHOLDER = "-" * TAG_WIDTH


class TaskKind(StrEnum):
    """What a task process runs."""

    #: ``target`` is a Python file, run as ``__main__`` (spark_python_task).
    PYTHON_FILE = "python_file"
    #: ``target`` is ``package_name:entry_point`` (python_wheel_task).
    PYTHON_WHEEL = "python_wheel"
    #: ``target`` is a notebook file (Databricks source format or ``.ipynb``), run in a Jupyter kernel
    #: (notebook_task); widget values come from the context's ``parameters``.
    NOTEBOOK = "notebook"
    #: ``target`` is a ``.sql`` file whose statements run through ``spark.sql`` (sql_task); its parameters
    #: come from the context's ``parameters``; the last result goes to ``sql_output.json``.
    SQL = "sql"


@dataclass(frozen=True)
class LaunchSpec:
    """One task attempt to start as its own process (and process group)."""

    attempt_id: int
    kind: TaskKind
    #: A Python file path, ``package_name:entry_point``, a notebook file path or a ``.sql`` file path.
    target: str
    #: Arguments after ``argv[0]`` (``sys.argv[1:]`` of the task).
    argv: Sequence[str]
    #: Working directory of the task process.
    cwd: str
    #: Added to the executor's environment for this task (``SLUICE_TASK_CONTEXT`` goes here).
    env: Mapping[str, str] = field(default_factory=dict)
    #: Directory for ``stdout.log``, ``stderr.log``, ``error.json``, ``task_values.json``; created if missing.
    attempt_dir: str = "."
    #: Seconds until the executor kills the attempt by itself (``timed_out`` is then set); None = never.
    timeout: float | None = None


@dataclass(frozen=True)
class Exited:
    """An attempt's process has exited and every process it started is gone or being killed."""

    attempt_id: int
    pid: int
    #: ``0`` success, ``>0`` exit status, ``<0`` killed by that signal number.
    returncode: int
    #: True when the executor killed it (``kill()``, a timeout or ``close()``).
    killed: bool = False
    #: True when the kill came from ``LaunchSpec.timeout``.
    timed_out: bool = False


class Executor(Protocol):
    """What the engine needs from an executor. All methods are called from one thread."""

    def start(self) -> None:
        """Begin starting up; must not block on it. Idempotent."""

    def launch(self, spec: LaunchSpec) -> int:
        """Start an attempt; return its pid (which is also its process group id)."""

    def poll(self, timeout: float = 0.0) -> list[Exited]:
        """Wait up to ``timeout`` seconds for exits and return them (``0`` never blocks)."""

    def kill(self, attempt_id: int, *, grace: float = DEFAULT_KILL_GRACE) -> None:
        """SIGTERM the attempt's processes, SIGKILL after ``grace`` seconds; returns at once."""

    def close(self, *, grace: float = 1.0) -> list[Exited]:
        """Kill every live attempt, stop, and return the exits not yet polled."""


__all__ = [
    "DEFAULT_KILL_GRACE",
    "PROCESS_TAG_ENV",
    "TAG_PLACEHOLDER",
    "TAG_WIDTH",
    "Executor",
    "Exited",
    "LaunchSpec",
    "TaskKind",
]
