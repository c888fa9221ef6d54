"""dbutils.notebook.run: a notebook starts another as a child run (WORKFLOW_RUN) and gets its exit value."""

from __future__ import annotations

import time
from typing import Any

import pytest

from e2e.helpers import Workspace

PARENT = """
# Databricks notebook source
result = dbutils.notebook.run("./lib/child", 60, {"x": "5"})
print(f"child said: {result}")

# COMMAND ----------

dbutils.notebook.exit(result)
"""

CHILD = """
# Databricks notebook source
dbutils.widgets.text("x", "0")
dbutils.notebook.exit(f"child got {dbutils.widgets.get('x')}")
"""

FAILING_CHILD = """
# Databricks notebook source
raise ValueError("bad row 7")
"""

CATCHING_PARENT = """
# Databricks notebook source
try:
    dbutils.notebook.run("broken", 60)
except Exception as e:
    dbutils.notebook.exit(f"caught {type(e).__name__}: {e}")
"""

SLOW_CHILD = """
# Databricks notebook source
import time

import pytest
time.sleep(60)
"""

TIMING_OUT_PARENT = """
# Databricks notebook source
dbutils.notebook.run("slow", 2)
"""


def notebook_task(key: str, path: str) -> dict[str, Any]:
    return {"task_key": key, "notebook_task": {"notebook_path": path}}


def workflow_children(ws: Workspace, task_run_id: int) -> list[dict[str, Any]]:
    """The WORKFLOW_RUN runs that the task run ``task_run_id`` started."""
    runs = ws.list_runs("--limit", "25")
    return [
        r
        for r in runs
        if r["run_type"] == "WORKFLOW_RUN" and r.get("trigger_info", {}).get("run_id") == task_run_id
    ]


def test_run_returns_the_child_exit_value_and_passes_arguments_as_widgets(ws: Workspace) -> None:
    ws.write("parent.py", PARENT)
    ws.write("lib/child.py", CHILD)
    done = ws.run(ws.job([notebook_task("main", "parent")]))
    assert done.returncode == 0, done.stderr
    assert done.run.results() == {"main": "SUCCESS"}
    output = ws.json("runs", "get-output", str(done.run.task("main")["run_id"]))
    assert output["notebook_output"]["result"] == "child got 5"
    (child,) = workflow_children(ws, done.run.task("main")["run_id"])
    assert ws.get_run(child["run_id"]).result_state == "SUCCESS"


def test_a_failing_child_raises_in_the_parent_with_its_error(ws: Workspace) -> None:
    ws.write("parent.py", CATCHING_PARENT)
    ws.write("broken.py", FAILING_CHILD)
    done = ws.run(ws.job([notebook_task("main", "parent")]))
    assert done.returncode == 0, done.stderr
    output = ws.json("runs", "get-output", str(done.run.task("main")["run_id"]))
    result = output["notebook_output"]["result"]
    assert result.startswith("caught WorkflowException: Notebook run ")
    assert "ended FAILED" in result
    assert "ValueError: bad row 7" in result


def test_a_child_that_outlives_its_timeout_is_ended_and_the_parent_fails(ws: Workspace) -> None:
    ws.write("parent.py", TIMING_OUT_PARENT)
    ws.write("slow.py", SLOW_CHILD)
    started = time.monotonic()
    done = ws.run(ws.job([notebook_task("main", "parent")]))
    assert time.monotonic() - started < 40
    assert done.run.results() == {"main": "FAILED"}
    assert "ended TIMEDOUT" in done.run.task("main")["state"]["state_message"]
    (child,) = workflow_children(ws, done.run.task("main")["run_id"])
    assert ws.get_run(child["run_id"]).result_state == "TIMEDOUT"
    assert ws.processes() == []


OUTER = """
# Databricks notebook source
result = dbutils.notebook.run("./lib/middle", 0, {"x": "5"})

# COMMAND ----------

dbutils.notebook.exit(f"outer got [{result}]")
"""

MIDDLE = """
# Databricks notebook source
dbutils.widgets.text("x", "0")
inner = dbutils.notebook.run("inner", 0, {"y": dbutils.widgets.get("x")})
dbutils.notebook.exit(f"middle got [{inner}]")
"""

INNER = """
# Databricks notebook source
dbutils.widgets.text("y", "0")
dbutils.notebook.exit(f"inner saw y={dbutils.widgets.get('y')}")
"""


@pytest.mark.timeout(240)
def test_children_run_on_the_parents_slot_with_parallelism_one(ws: Workspace) -> None:
    # With one slot, the parent task holds it while it waits in dbutils.notebook.run: a child that needed a
    # slot of its own would never start (a 0 timeout waits forever), so the run would hang.
    ws.write("outer.py", OUTER)
    ws.write("lib/middle.py", MIDDLE)
    ws.write("lib/inner.py", INNER)
    job = ws.job([notebook_task("main", "outer"), notebook_task("side", "lib/inner")])
    done = ws.run(job, "--parallelism", "1", timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.run.results() == {"main": "SUCCESS", "side": "SUCCESS"}
    main, side = done.run.task("main"), done.run.task("side")
    overlap = main["start_time"] < side["end_time"] and side["start_time"] < main["end_time"]
    assert not overlap, "an ordinary task still waits for the one slot while the children run on main's"
    main_id = done.run.task("main")["run_id"]
    output = ws.json("runs", "get-output", str(main_id))
    assert output["notebook_output"]["result"] == "outer got [middle got [inner saw y=5]]"
    (middle,) = workflow_children(ws, main_id)
    middle_run = ws.get_run(middle["run_id"])
    assert middle_run.result_state == "SUCCESS"
    (inner,) = workflow_children(ws, middle_run.tasks[0]["run_id"])
    assert ws.get_run(inner["run_id"]).result_state == "SUCCESS"
