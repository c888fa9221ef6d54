"""A task run's output (Jobs API ``runs/get-output``) and its captured logs: shared by the CLI and the API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sluice.engine.view import task_run_json
from sluice.errors import InvalidRequestError, NotFoundError
from sluice.store import Store

#: get-output returns at most the last 5 MB of logs, as Databricks does.
LOG_LIMIT = 5 * 1024 * 1024

MULTI_TASK_OUTPUT = (
    "Retrieving the output of runs with multiple tasks is not supported. "
    "Please retrieve the output of each individual task run instead."
)


def read_log(attempt_dir: str | None, stream: str, limit: int = LOG_LIMIT) -> tuple[str, bool]:
    """The last ``limit`` bytes of an attempt's ``stdout``/``stderr`` log, and whether it was cut."""
    if not attempt_dir:
        return "", False
    path = Path(attempt_dir) / f"{stream}.log"
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode(errors="replace"), size > limit
    except FileNotFoundError:
        return "", False


def run_output(store: Store, task_run_id: int) -> dict[str, Any]:
    """``RunOutput`` of a task run; a job run id is refused as Databricks refuses multi-task runs."""
    try:
        tr = store.get_task_run(task_run_id)
    except NotFoundError:
        store.get_run(task_run_id)  # a job run id: Databricks refuses those for multi-task runs
        raise InvalidRequestError(MULTI_TASK_OUTPUT) from None
    run = store.get_run(tr.job_run_id)
    task_settings = next((t for t in run.settings.get("tasks", []) if t["task_key"] == tr.task_key), None)
    out: dict[str, Any] = {
        "metadata": {**task_run_json(tr, task_settings), "job_id": run.job_id, "job_run_id": run.run_id}
    }
    if tr.error:
        out["error"] = tr.error
    if tr.error_trace:
        out["error_trace"] = tr.error_trace
    if task_settings is not None and "notebook_task" in task_settings:
        # Databricks: notebooks have no `logs` (their output is the notebook); notebook_output is set
        # for every notebook task, empty when it did not call dbutils.notebook.exit.
        out["notebook_output"] = {}
        out.update(tr.output)
        return out
    if task_settings is not None and "sql_task" in task_settings:
        out.update(tr.output)  # sql_output (the last statement's first rows); no logs, as on Databricks
        return out
    stdout, cut_out = read_log(tr.attempt_dir, "stdout")
    stderr, cut_err = read_log(tr.attempt_dir, "stderr")
    if stdout or stderr:
        out["logs"] = (stdout + stderr)[-LOG_LIMIT:]
        out["logs_truncated"] = cut_out or cut_err or len(stdout) + len(stderr) > LOG_LIMIT
    out.update(tr.output)
    return out
