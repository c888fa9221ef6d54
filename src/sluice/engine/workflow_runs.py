"""``dbutils.notebook.run``: a notebook task asks the control plane for a child run and waits for it.

The request goes through the store, the single source of truth: the task process inserts a one-time run
(``run_type`` WORKFLOW_RUN, ``parent_run_id`` = its job run, ``trigger_info.run_id`` = its task run) that no
driver owns yet, then polls it. The driver of the parent run claims such runs with the compare-and-set of
``Store.take_over_run`` (so ``sluice serve``'s orchestrator, which claims unowned runs too, can never drive
one twice) and drives them like any other run. When the calling attempt ends, its children that are still
going are canceled; canceling the parent run cancels them too (``Store.request_cancel`` follows
``parent_run_id``).

Task side: :func:`run_notebook` (imported by ``sluice.runtime.notebook`` only when ``run`` is called).
Driver side: :func:`claim_children` and :func:`end_children`.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.engine import seconds
from sluice.errors import SluiceError
from sluice.states import LifeCycleState, ResultState, RunType, TriggerType

if TYPE_CHECKING:
    from sluice.engine.driver import Driver
    from sluice.engine.runstate import Attempt, RunState
    from sluice.runtime.context import TaskContext
    from sluice.store import Store

#: How often the driver looks for child runs while a notebook task runs, and a waiting task polls its child.
POLL_MS = 100
#: Environment variable with the path of the notebook a task runs (relative ``run`` paths start from its
#: folder); the working directory when unset.
NOTEBOOK_PATH_ENV = "SLUICE_NOTEBOOK_PATH"


class WorkflowException(SluiceError, RuntimeError):
    """A ``dbutils.notebook.run`` child failed, was canceled or did not finish in time."""


def _task_key(path: Path) -> str:
    key = re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)[:100]
    return key or "notebook"


def child_settings(notebook: Path, timeout_seconds: int, arguments: Mapping[str, str]) -> dict[str, Any]:
    """The one-time run of ``notebook`` with its widgets set to ``arguments`` (strings)."""
    settings: dict[str, Any] = {
        "name": notebook.stem,
        "tasks": [
            {
                "task_key": _task_key(notebook),
                "notebook_task": {
                    "notebook_path": str(notebook),
                    "source": "WORKSPACE",
                    "base_parameters": {str(k): str(v) for k, v in arguments.items()},
                },
            }
        ],
    }
    if timeout_seconds > 0:
        settings["timeout_seconds"] = int(timeout_seconds)
    return settings


def _caller_dir() -> Path:
    current = os.environ.get(NOTEBOOK_PATH_ENV)
    return Path(current).parent if current else Path.cwd()


def run_notebook(
    context: TaskContext, path: str, timeout_seconds: int, arguments: Mapping[str, str] | None
) -> str:
    """Start ``path`` as a child run of the calling task and return its exit value (task side)."""
    from sluice.notebooks.source import NotebookSourceError, resolve_notebook_path, workspace_root_from_env
    from sluice.settings import Settings
    from sluice.store import Store

    if timeout_seconds < 0:
        raise ValueError(f"timeout_seconds must be 0 (no timeout) or more, not {timeout_seconds}")
    try:
        notebook = resolve_notebook_path(_caller_dir(), path, root=workspace_root_from_env())
    except NotebookSourceError as exc:
        raise WorkflowException(f"dbutils.notebook.run: {exc}") from None
    redaction = sys.modules.get("sluice.runtime.redact")  # loaded once the task read a secret
    if redaction is not None and arguments:  # the child's parameters are stored: a secret goes redacted
        arguments = {redaction.redact(str(k)): redaction.redact(str(v)) for k, v in arguments.items()}
    settings = Settings.from_env()
    with Store.open(settings.database_url, settings.home) as store:
        parent = store.get_run(context.job_run_id)
        child, _ = store.create_run(
            job_id=None,
            settings=child_settings(notebook, timeout_seconds, arguments or {}),
            run_name=notebook.stem,
            run_type=RunType.WORKFLOW_RUN.value,
            trigger=TriggerType.ONE_TIME.value,
            job_parameters=[],
            overriding_parameters={},
            now=int(time.time() * 1000),
            queue_enabled=False,
            max_concurrent_runs=1,
            parent_run_id=context.job_run_id,
            trigger_info={"run_id": context.task_run_id},
            creator_user_name=parent.creator_user_name,
        )
        return _wait(store, child.run_id, path, timeout_seconds)


def _wait(store: Store, run_id: int, path: str, timeout_seconds: int) -> str:
    # The child's own timeout_seconds makes its driver end it TIMEDOUT; this deadline is the backstop for a
    # child no driver picks up (the parent's driver died).
    deadline = time.monotonic() + timeout_seconds + 30 if timeout_seconds > 0 else None
    while True:
        run = store.get_run(run_id)
        if LifeCycleState(run.state).is_terminal:
            return _result(store, run_id, path, run.result_state, run.state_message)
        if deadline is not None and time.monotonic() > deadline:
            store.request_cancel(run_id)
            raise WorkflowException(
                f"Notebook run {run_id} of '{path}' did not finish within {seconds(timeout_seconds)}"
            )
        time.sleep(POLL_MS / 1000)


def _result(store: Store, run_id: int, path: str, result: str | None, message: str) -> str:
    tasks = store.list_task_runs(run_id)
    if result == ResultState.SUCCESS.value:
        output = tasks[-1].output if tasks else {}
        return str((output.get("notebook_output") or {}).get("result") or "")
    error = next((t.state_message for t in reversed(tasks) if t.state_message), "") or message
    raise WorkflowException(f"Notebook run {run_id} of '{path}' ended {result}: {error}")


# --- driver side ----------------------------------------------------------------------------------------


def _runs_notebook(state: RunState, attempt: Attempt) -> bool:
    if attempt.parent is not None:  # a for-each iteration runs the for-each task's nested task
        return "notebook_task" in (state.tasks[attempt.parent].payload.get("task") or {})
    return state.tasks[attempt.task_key].task_type == "notebook_task"


def wants_poll(d: Driver) -> bool:
    """Whether a running attempt could be asking for a child run (only notebook tasks can)."""
    return any(_runs_notebook(state, attempt) for state, attempt in d._running.values())


def claim_children(d: Driver, now: int) -> None:
    """Claim the unowned child runs that running notebook tasks of ``d`` asked for; they start next step."""
    parents = [state.run_id for state in d.runs.values() if not state.finished]
    for run in d.store.unclaimed_child_runs(parents):
        if d.store.take_over_run(run.run_id, expected_driver=None, driver=str(d.driver_id), now=now):
            d.workflow_children[run.run_id] = int(run.trigger_info.get("run_id") or 0)
            d.adopt_later(d.store.get_run(run.run_id))


def end_children(d: Driver, attempt_id: int) -> None:
    """The attempt ``attempt_id`` ended: cancel the child runs it started that are still going."""
    for child_id, owner in list(d.workflow_children.items()):
        if owner != attempt_id:
            continue
        del d.workflow_children[child_id]
        child = d.runs.get(child_id)
        if child is None or not child.finished:
            d.store.request_cancel(child_id)
