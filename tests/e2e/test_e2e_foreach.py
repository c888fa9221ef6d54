"""for_each_task end to end (the seed's matrix tasks): iterations, concurrency, retries, inputs, limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from e2e.helpers import Workspace, py_task, task_result, wait_for

COUNTRIES = [f"C{i:02d}" for i in range(50)]

REPORT = """
import json, os, sys, time
country, count = sys.argv[1], sys.argv[2]
log = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spans.log")
start = time.time()
time.sleep(float(os.environ.get("REPORT_SLEEP", "0.15")))
with open(log, "a") as f:
    f.write(json.dumps([country, count, start, time.time()]) + "\\n")
if country in sys.argv[3:]:
    raise RuntimeError(f"no data for {country}")
print("report for", country)
"""


def for_each(
    key: str, inputs: Any, nested: dict[str, Any], *, concurrency: int, deps: list[str]
) -> dict[str, Any]:
    task: dict[str, Any] = {
        "task_key": key,
        "for_each_task": {"inputs": inputs, "concurrency": concurrency, "task": nested},
    }
    if deps:
        task["depends_on"] = [{"task_key": d} for d in deps]
    return task


def spans(ws: Workspace) -> list[tuple[str, str, float, float]]:
    lines = (ws.dir / "spans.log").read_text().splitlines()
    return [(str(c), str(n), float(a), float(b)) for c, n, a, b in map(json.loads, lines)]


def max_overlap(rows: list[tuple[str, str, float, float]]) -> int:
    events = sorted([(r[2], 1) for r in rows] + [(r[3], -1) for r in rows])
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


@pytest.mark.slow
def test_the_seeds_matrix_case_50_countries_at_concurrency_10(ws: Workspace) -> None:
    ws.write("report.py", REPORT)
    nested = py_task("report_country", "report.py", params=["{{input}}", "{{task.execution_count}}"])
    job = ws.job([for_each("reports", json.dumps(COUNTRIES), nested, concurrency=10, deps=[])])
    done = ws.run(job, "--parallelism", "16")
    assert done.returncode == 0, done.stderr
    assert done.run.result_state == "SUCCESS"
    assert [t["task_key"] for t in done.run.tasks] == ["reports"]  # iterations are not job tasks
    stats = done.run.task("reports")["for_each_task"]["stats"]["task_run_stats"]
    assert stats == {
        "total_iterations": 50,
        "scheduled_iterations": 50,
        "active_iterations": 0,
        "completed_iterations": 50,
        "succeeded_iterations": 50,
        "failed_iterations": 0,
    }
    rows = spans(ws)
    assert sorted(r[0] for r in rows) == COUNTRIES  # each element exactly once, as {{input}}
    assert max_overlap(rows) <= 10
    assert max_overlap(rows) >= 3  # they did run concurrently


def test_over_a_task_value_list_with_a_failing_iteration(ws: Workspace) -> None:
    ws.write(
        "list.py",
        "from sluice.runtime import dbutils\ndbutils.jobs.taskValues.set('items', list('abcde'))\n",
    )
    ws.write("report.py", REPORT)
    nested = py_task(
        "each", "report.py", params=["{{input}}", "{{task.execution_count}}", "c"], max_retries=1
    )
    job = ws.job(
        [
            py_task("list", "list.py"),
            for_each("loop", "{{tasks.list.values.items}}", nested, concurrency=3, deps=["list"]),
            py_task("after", "report.py", params=["after", "1"], deps=["loop"]),
        ]
    )
    done = ws.run(job)
    assert done.returncode == 1
    assert done.run.result_state == "FAILED"
    loop = done.run.task("loop")
    assert task_result(loop) == "FAILED"
    assert "1 of 5 iterations failed" in loop["state"]["state_message"]
    assert task_result(done.run.task("after")) == "UPSTREAM_FAILED"
    stats = loop["for_each_task"]["stats"]["task_run_stats"]
    assert (stats["succeeded_iterations"], stats["failed_iterations"]) == (4, 1)
    assert max_overlap(spans(ws)) <= 3
    # the for-each task run lists every iteration attempt: c ran twice (max_retries 1)
    detail = ws.json("runs", "get", str(loop["run_id"]))
    attempts = [(i["iteration"], i["attempt_number"], task_result(i)) for i in detail["iterations"]]
    assert attempts.count((2, 0, "FAILED")) == 1
    assert attempts.count((2, 1, "FAILED")) == 1
    assert sorted(i for i, n, r in attempts if r == "SUCCESS") == [0, 1, 3, 4]
    assert len({i["run_id"] for i in detail["iterations"]}) == len(detail["iterations"])

    # the fix: c no longer fails; a repair re-runs only iteration c and the task after the loop
    ws.write("report.py", REPORT.replace("if country in sys.argv[3:]", "if country in sys.argv[4:]"))
    (ws.dir / "spans.log").write_text("")
    repaired = ws.cli("runs", "repair", str(done.run.run_id), "--all-failed", "--wait", "--output", "json")
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout)["state"]["result_state"] == "SUCCESS"
    assert sorted(r[0] for r in spans(ws)) == ["after", "c"]  # the list task and a, b, d, e were kept


def test_object_inputs_and_fields(ws: Workspace) -> None:
    ws.write("p.py", "import sys\nprint(sys.argv[1:])\n")
    inputs = json.dumps([{"country": "DE", "n": 1}, {"country": "FR", "n": 2}])
    nested = py_task("each", "p.py", params=["{{input.country}}", "{{input.n}}", "{{input}}"])
    done = ws.run(ws.job([for_each("loop", inputs, nested, concurrency=2, deps=[])]))
    assert done.run.result_state == "SUCCESS", done.stderr
    detail = ws.json("runs", "get", str(done.run.task("loop")["run_id"]))
    params = sorted(i["resolved_values"]["spark_python_task"]["parameters"][:2] for i in detail["iterations"])
    assert params == [["DE", "1"], ["FR", "2"]]
    assert json.loads(detail["iterations"][0]["resolved_values"]["spark_python_task"]["parameters"][2])[
        "n"
    ] in (1, 2)


def test_empty_inputs_succeed_and_bad_inputs_fail(ws: Workspace) -> None:
    ws.write("p.py", "print('x')\n")
    ws.write(
        "v.py", "from sluice.runtime import dbutils\ndbutils.jobs.taskValues.set('v', {'not': 'a list'})\n"
    )
    nested = py_task("each", "p.py")
    job = ws.job(
        [
            for_each("empty", "[]", nested, concurrency=1, deps=[]),
            py_task("v", "v.py"),
            for_each(
                "bad", "{{tasks.v.values.v}}", dict(nested, task_key="each2"), concurrency=1, deps=["v"]
            ),
        ]
    )
    done = ws.run(job)
    assert task_result(done.run.task("empty")) == "SUCCESS"
    bad = done.run.task("bad")
    assert task_result(bad) == "FAILED"
    assert "must be a JSON array" in bad["state"]["state_message"]


def test_inline_inputs_over_the_limit_are_invalid(ws: Workspace) -> None:
    ws.write("p.py", "print('x')\n")
    inputs = json.dumps(["x" * 50] * 250)  # > 10,000 characters inline
    done = ws.cli(
        "run", str(ws.job([for_each("loop", inputs, py_task("each", "p.py"), concurrency=1, deps=[])]))
    )
    assert done.returncode == 2
    assert "10,000" in done.stderr or "10000" in done.stderr


def test_repair_reruns_only_the_failed_iterations(ws: Workspace) -> None:
    ws.write(
        "each.py",
        "import os, sys\nopen('ran.log', 'a').write(sys.argv[1] + '\\n')\n"
        "if sys.argv[1] == 'c' and not os.path.exists('fixed'):\n    raise RuntimeError('c is broken')\n",
    )
    nested = py_task("each", "each.py", params=["{{input}}"])
    job = ws.job([for_each("loop", json.dumps(list("abcd")), nested, concurrency=2, deps=[])])
    first = ws.run(job)
    assert first.run.result_state == "FAILED"
    (ws.dir / "fixed").write_text("")
    (ws.dir / "ran.log").write_text("")
    repaired = ws.cli("runs", "repair", str(first.run.run_id), "--all-failed", "--wait", "--output", "json")
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout)["state"]["result_state"] == "SUCCESS"
    assert (ws.dir / "ran.log").read_text().split() == ["c"]  # a, b and d were kept


def test_cancel_ends_iterations_waiting_for_a_retry(ws: Workspace) -> None:
    ws.write("each.py", "import sys\nif sys.argv[1] == 'b':\n    raise RuntimeError('b fails')\n")
    nested = py_task(
        "each", "each.py", params=["{{input}}"], max_retries=1, min_retry_interval_millis=120_000
    )
    job = ws.job([for_each("loop", json.dumps(["a", "b"]), nested, concurrency=2, deps=[])])
    bg = ws.start("run", str(job), "--output", "json")
    run_id = ws.wait_active_run()

    def waiting() -> bool:
        detail = ws.json("runs", "get", str(ws.get_run(run_id).task("loop")["run_id"]))
        return any(i["state"]["life_cycle_state"] == "WAITING_FOR_RETRY" for i in detail["iterations"])

    wait_for(waiting, timeout=30, what="iteration b to wait for its retry")
    assert ws.cli("runs", "cancel", str(run_id)).returncode == 0
    finished = bg.finish(timeout=30)  # well before the 120 s retry interval
    assert finished.run.result_state == "CANCELED"
    assert (
        task_result(finished.run.task("loop")) == "CANCELED"
        or task_result(finished.run.task("loop")) == "FAILED"
    )
