"""condition_task: branching on task values, through ``sluice run`` (databricks.md §1.4, §1.5).

EQUAL_TO/NOT_EQUAL compare strings, the ordering operators compare numbers; the branch not taken is EXCLUDED.
"""

from __future__ import annotations

from typing import Any

import pytest

from e2e.helpers import Run, Workspace, py_task, task_life, task_message, task_result

#: Sets the task value ``x`` to argv[1] (a string) and ``flag`` to the boolean True.
SETTER = """
import sys
from sluice.runtime import dbutils
dbutils.jobs.taskValues.set("x", sys.argv[1])
dbutils.jobs.taskValues.set("flag", True)
"""


def condition(key: str, op: str, left: str, right: str, *, deps: tuple[str, ...] = ("a",)) -> dict[str, Any]:
    """A condition task comparing ``left`` and ``right`` with ``op``."""
    return {
        "task_key": key,
        "depends_on": [{"task_key": d} for d in deps],
        "condition_task": {"op": op, "left": left, "right": right},
    }


def branch(key: str, script: str, cond: str, outcome: str, **fields: Any) -> dict[str, Any]:
    """A python task that runs only when condition ``cond`` has ``outcome`` ("true"/"false")."""
    task = py_task(key, script, **fields)
    task["depends_on"] = [{"task_key": cond, "outcome": outcome}]
    return task


def branches(cond: str) -> list[dict[str, Any]]:
    """The two children of ``cond``: ``<cond>_t`` on outcome true, ``<cond>_f`` on outcome false."""
    return [branch(f"{cond}_t", "ok.py", cond, "true"), branch(f"{cond}_f", "ok.py", cond, "false")]


def assert_routed(run: Run, cond: str, outcome: str) -> None:
    """``cond`` succeeded with ``outcome``; the child on that outcome ran and the other one was EXCLUDED."""
    entry = run.task(cond)
    assert task_result(entry) == "SUCCESS", task_message(entry)
    assert entry["condition_task"]["outcome"] == outcome, cond
    taken, other = (f"{cond}_t", f"{cond}_f") if outcome == "true" else (f"{cond}_f", f"{cond}_t")
    assert task_result(run.task(taken)) == "SUCCESS", taken
    assert task_life(run.task(taken)) == "TERMINATED", taken
    assert task_result(run.task(other)) == "EXCLUDED", other
    assert task_life(run.task(other)) == "SKIPPED", other
    assert run.task(other)["start_time"] == 0, f"{other} started though its branch was not taken"


def test_branch_taken_runs_and_the_other_is_excluded(ws: Workspace) -> None:
    ws.write("set.py", SETTER)
    marker = ws.dir / "false-branch-ran"
    ws.write("touch.py", f"open({str(marker)!r}, 'w').close()\n")
    tasks = [
        py_task("a", "set.py", params=["orders"]),
        condition("cond", "EQUAL_TO", "{{tasks.a.values.x}}", "orders"),
        branch("cond_t", "ok.py", "cond", "true"),
        branch("cond_f", "touch.py", "cond", "false"),
    ]
    done = ws.run(ws.job(tasks))
    run = done.run
    assert_routed(run, "cond", "true")
    assert not marker.exists(), "the branch not taken ran"
    cond = run.task("cond")
    assert cond["condition_task"]["left"] == "{{tasks.a.values.x}}", "the settings keep the reference"
    assert cond["resolved_values"]["condition_task"] == {"left": "orders", "right": "orders"}
    assert run.result_state == "SUCCESS"  # the excluded leaf counts as succeeded
    assert done.returncode == 0


def test_string_and_numeric_comparison_semantics(ws: Workspace) -> None:
    """The string "12.0" is not EQUAL_TO "12" (strings) but is GREATER_THAN_OR_EQUAL to it (numbers)."""
    ws.write("set.py", SETTER)
    x = "{{tasks.a.values.x}}"
    cases = {
        "eq_str": ("EQUAL_TO", x, "12", "false"),
        "ne_str": ("NOT_EQUAL", x, "12", "true"),
        "ge_num": ("GREATER_THAN_OR_EQUAL", x, "12", "true"),
        "le_num": ("LESS_THAN_OR_EQUAL", x, "12", "true"),
        "gt_num": ("GREATER_THAN", x, "12", "false"),
        # "9" < "10" as numbers, though not as text
        "lt_num": ("LESS_THAN", "9", "10", "true"),
        "eq_same": ("EQUAL_TO", x, "12.0", "true"),
    }
    tasks = [py_task("a", "set.py", params=["12.0"])]
    for key, (op, left, right, _) in cases.items():
        tasks += [condition(key, op, left, right), *branches(key)]
    done = ws.run(ws.job(tasks))
    for key, (_, left, right, outcome) in cases.items():
        assert_routed(done.run, key, outcome)
        resolved = done.run.task(key)["resolved_values"]["condition_task"]
        assert resolved == {"left": left.replace(x, "12.0"), "right": right}, key
    assert done.run.result_state == "SUCCESS"
    assert done.returncode == 0


def test_boolean_task_value_compares_as_lowercase_true(ws: Workspace) -> None:
    ws.write("set.py", SETTER)
    tasks = [
        py_task("a", "set.py", params=["-"]),
        condition("is_true", "EQUAL_TO", "{{tasks.a.values.flag}}", "true"),
        *branches("is_true"),
        condition("is_python_true", "EQUAL_TO", "{{tasks.a.values.flag}}", "True"),
        *branches("is_python_true"),
    ]
    done = ws.run(ws.job(tasks))
    assert_routed(done.run, "is_true", "true")
    assert_routed(done.run, "is_python_true", "false")
    assert done.run.task("is_true")["resolved_values"]["condition_task"]["left"] == "true"


def test_non_numeric_operand_fails_the_condition_and_its_children(ws: Workspace) -> None:
    ws.write("set.py", SETTER)
    tasks = [
        py_task("a", "set.py", params=["abc"]),
        condition("cond", "GREATER_THAN", "{{tasks.a.values.x}}", "12"),
        *branches("cond"),
    ]
    done = ws.run(ws.job(tasks))
    run = done.run
    cond = run.task("cond")
    assert task_result(cond) == "FAILED"
    assert "not a number" in task_message(cond), task_message(cond)
    assert "abc" in task_message(cond)
    assert "outcome" not in cond["condition_task"], "a failed condition has no outcome"
    assert run.results() == {"a": "SUCCESS", "cond": "FAILED", "cond_t": "UPSTREAM_FAILED",
                             "cond_f": "UPSTREAM_FAILED"}  # fmt: skip
    assert task_life(run.task("cond_t")) == "SKIPPED"
    assert run.result_state == "FAILED"
    assert done.returncode == 1


def test_condition_task_with_max_retries_is_rejected_at_validation(ws: Workspace) -> None:
    cond = condition("cond", "EQUAL_TO", "1", "1", deps=())
    cond["max_retries"] = 2
    job = ws.job([cond, branch("child", "ok.py", "cond", "true")])
    done = ws.cli("run", str(job), "--output", "json")
    assert done.returncode == 2, done.stderr
    assert "cond" in done.stderr
    assert "max_retries" in done.stderr
    assert done.stdout == ""
    assert ws.list_runs() == [], "an invalid job created a run"


QUALITY_CHECK = """
import sys
from sluice.runtime import dbutils
rejected, total = int(sys.argv[1]), int(sys.argv[2])
dbutils.jobs.taskValues.set("reject_rate", rejected / total)
"""


@pytest.mark.parametrize(
    ("rejected", "rate", "route", "skipped"),
    [("8", "0.08", "quarantine", "gold"), ("1", "0.01", "gold", "quarantine")],
)
def test_seed_quality_check_routes_to_quarantine_or_gold(
    ws: Workspace, rejected: str, rate: str, route: str, skipped: str
) -> None:
    """The seed: a check sets reject_rate; > 0.05 goes to quarantine, else to gold; report follows either."""
    ws.write("check.py", QUALITY_CHECK)
    tasks = [
        py_task("quality_check", "check.py", params=[rejected, "100"]),
        condition("too_many_rejects", "GREATER_THAN", "{{tasks.quality_check.values.reject_rate}}", "0.05",
                  deps=("quality_check",)),
        branch("quarantine", "ok.py", "too_many_rejects", "true"),
        branch("gold", "ok.py", "too_many_rejects", "false"),
        py_task("report", "ok.py", deps=["quarantine", "gold"]),
    ]  # fmt: skip
    done = ws.run(ws.job(tasks))
    run = done.run
    cond = run.task("too_many_rejects")
    assert cond["resolved_values"]["condition_task"] == {"left": rate, "right": "0.05"}
    assert cond["condition_task"]["outcome"] == ("true" if route == "quarantine" else "false")
    assert run.results() == {
        "quality_check": "SUCCESS",
        "too_many_rejects": "SUCCESS",
        route: "SUCCESS",
        skipped: "EXCLUDED",
        "report": "SUCCESS",  # an EXCLUDED dependency counts as succeeded
    }
    assert run.result_state == "SUCCESS"
    assert done.returncode == 0
