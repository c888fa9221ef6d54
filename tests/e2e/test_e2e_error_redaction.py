"""A task that fails with a secret value in its error message: error.json, the run's state_message and
get-output's error/error_trace show ``[REDACTED]``, for a Python file task and for a notebook task."""

from __future__ import annotations

import json
from typing import Any

from e2e.helpers import Workspace, py_task, task_message

SECRET = "hunter2-Pa55word!"

SCRIPT = """
from sluice.runtime import dbutils
password = dbutils.secrets.get("etl", "pw")
raise ValueError("cannot log in with " + password)
"""

NOTEBOOK = """# Databricks notebook source
password = dbutils.secrets.get("etl", "pw")

# COMMAND ----------

raise ValueError("cannot log in with " + password)
"""


def _put_secret(ws: Workspace) -> None:
    assert ws.cli("secrets", "create-scope", "etl").returncode == 0
    put = ws.cli("secrets", "put-secret", "etl", "pw", "--string-value", SECRET)
    assert put.returncode == 0, put.stderr


def _check_failed_with_redacted_error(ws: Workspace, task: dict[str, Any], run_id: int) -> None:
    assert task_message(task) == "ValueError: cannot log in with [REDACTED]"
    output = ws.json("runs", "get-output", str(task["run_id"]))
    assert output["error"] == "ValueError: cannot log in with [REDACTED]"
    assert "cannot log in with [REDACTED]" in output["error_trace"]
    assert SECRET not in json.dumps(output)
    shown = ws.cli("runs", "get", str(run_id), "--output", "json").stdout
    assert "[REDACTED]" in shown
    assert SECRET not in shown
    assert SECRET not in ws.cli("runs", "logs", str(run_id), "--task", task["task_key"]).stdout


def test_a_python_task_failing_with_a_secret_in_its_message_reports_it_redacted(ws: Workspace) -> None:
    _put_secret(ws)
    ws.write("task.py", SCRIPT)
    done = ws.run(ws.job([py_task("t", "task.py")]))
    assert done.run.results() == {"t": "FAILED"}
    _check_failed_with_redacted_error(ws, done.run.task("t"), done.run.run_id)


def test_a_notebook_task_failing_with_a_secret_in_its_message_reports_it_redacted(ws: Workspace) -> None:
    _put_secret(ws)
    ws.write("nb.py", NOTEBOOK)
    done = ws.run(ws.job([{"task_key": "n", "notebook_task": {"notebook_path": "nb"}}]))
    assert done.run.results() == {"n": "FAILED"}
    _check_failed_with_redacted_error(ws, done.run.task("n"), done.run.run_id)
    exported = ws.cli("runs", "export", str(done.run.task("n")["run_id"]))
    assert exported.returncode == 0, exported.stderr
    assert "[REDACTED]" in exported.stdout
    assert SECRET not in exported.stdout
