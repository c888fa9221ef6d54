"""Repairing runs with ``sluice runs repair`` (databricks.md §4): re-run tasks inside the same run.

Re-run tasks get new task runs in the same run_id, with the job's current settings and the files as they are
on disk now; kept tasks keep their results and task values; the run's result is recomputed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from e2e.helpers import GATE, Background, Finished, Run, Workspace, py_task, read_pid, task_result, wait_for

#: Appends ``name [args...]`` to the log argv[1]; first raises unless the file argv[2] exists ("-": no need).
STEP = """
import os, sys
log, needs, name = sys.argv[1:4]
if needs != "-" and not os.path.exists(needs):
    raise RuntimeError(f"{needs} is missing: not fixed yet")
with open(log, "a") as f:
    f.write(" ".join([name, *sys.argv[4:]]) + "\\n")
"""


# ------------------------------------------------------------------------------------------ helpers


def step(
    ws: Workspace, key: str, *, needs: str = "-", args: tuple[str, ...] = (), **fields: Any
) -> dict[str, Any]:
    """A STEP task: it logs ``key`` (and ``args``) to ``log.txt``; it fails while ``needs`` is missing."""
    needs_path = "-" if needs == "-" else str(ws.dir / needs)
    return py_task(
        key, "step.py", params=[str(ws.dir / "log.txt"), needs_path, "{{task.name}}", *args], **fields
    )


def logged(ws: Workspace) -> list[str]:
    """What the STEP tasks logged, one line per successful execution, in order."""
    path = ws.dir / "log.txt"
    return path.read_text().splitlines() if path.exists() else []


def entries(run: Run, key: str) -> list[dict[str, Any]]:
    """Every task run of ``key``, in the order the run lists them (earlier executions first)."""
    found = [t for t in run.tasks if t["task_key"] == key]
    assert found, f"task {key!r} has no entry in run {run.run_id}"
    return found


def repair(ws: Workspace, run_id: int, *args: str) -> Finished:
    """``sluice runs repair RUN_ID ARGS --wait --output json``: it must end with 0 or 1 and print the Run."""
    done = ws.cli("runs", "repair", str(run_id), *args, "--wait", "--output", "json")
    assert done.returncode in (0, 1), (
        f"runs repair exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    return Finished(done.returncode, Run(json.loads(done.stdout)), done.stderr)


def refused(ws: Workspace, run_id: int, *args: str, codes: tuple[int, ...] = (1, 2)) -> str:
    """A ``runs repair`` that must be refused: nothing on stdout; returns its stderr."""
    done = ws.cli("runs", "repair", str(run_id), *args, "--wait", "--output", "json")
    assert done.returncode in codes, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.stdout == ""
    return done.stderr


def history(ws: Workspace, run_id: int) -> list[dict[str, Any]]:
    return list(ws.get_run(run_id).data.get("repair_history", []))


def chain(ws: Workspace) -> Path:
    """The issue's job: a -> b -> c, where b fails until ``fixed`` exists."""
    ws.write("step.py", STEP)
    return ws.job(
        [
            step(ws, "a"),
            step(ws, "b", needs="fixed", deps=["a"]),
            step(ws, "c", deps=["b"]),
        ]
    )


def failed_chain(ws: Workspace) -> Run:
    """A run of ``chain``: b FAILED, c UPSTREAM_FAILED, the run FAILED."""
    done = ws.run(chain(ws))
    assert done.run.results() == {"a": "SUCCESS", "b": "FAILED", "c": "UPSTREAM_FAILED"}
    assert done.run.result_state == "FAILED"
    assert done.returncode == 1
    return done.run


# ------------------------------------------------------------------------------------------ the headline


@pytest.mark.slow
def test_repair_after_the_fix_on_disk_reruns_failed_tasks_in_the_same_run(ws: Workspace) -> None:
    original = failed_chain(ws)
    ids = {key: original.task(key)["run_id"] for key in ("a", "b", "c")}
    assert logged(ws) == ["a"]
    (ws.dir / "fixed").touch()  # the fix, on disk

    done = repair(ws, original.run_id, "--all-failed")
    run = done.run
    assert done.returncode == 0, done.stderr
    assert (run.run_id, run.job_id) == (original.run_id, original.job_id)
    assert run.result_state == "SUCCESS"
    assert run.life_cycle_state == "TERMINATED"
    assert logged(ws) == ["a", "b", "c"], "a was kept: it must not run again"
    assert len(entries(run, "a")) == 1
    assert entries(run, "a")[0]["run_id"] == ids["a"]
    for key in ("b", "c"):
        first, second = entries(run, key)
        assert first["run_id"] == ids[key]
        assert task_result(first) == task_result(original.task(key)), "the earlier task run keeps its result"
        assert task_result(second) == "SUCCESS"
        assert second["run_id"] not in ids.values(), f"{key}'s re-run reuses a task run id"
    new_ids = [entries(run, key)[1]["run_id"] for key in ("b", "c")]

    got = ws.get_run(original.run_id)
    assert got.result_state == "SUCCESS"
    listed = ws.list_runs()
    assert [r["run_id"] for r in listed] == [original.run_id], "a repair must not create a new run"
    assert listed[0]["state"]["result_state"] == "SUCCESS"
    first, repaired = history(ws, original.run_id)
    assert first["type"] == "ORIGINAL"
    assert "id" not in first
    assert sorted(first["task_run_ids"]) == sorted(ids.values())
    assert first["state"]["result_state"] == "FAILED"
    assert repaired["type"] == "REPAIR"
    assert isinstance(repaired["id"], int)
    assert sorted(repaired["task_run_ids"]) == sorted(new_ids)
    assert repaired["state"]["result_state"] == "SUCCESS"
    assert 0 < repaired["start_time"] <= repaired["end_time"]
    assert first["end_time"] <= repaired["start_time"]
    assert got.data["run_duration"] >= repaired["end_time"] - first["start_time"], (
        "run_duration spans repairs"
    )
    assert [h["type"] for h in run.data["repair_history"]] == ["ORIGINAL", "REPAIR"], (
        "--wait prints the history"
    )

    # A second repair needs the latest repair id: missing or stale, it is refused and changes nothing.
    missing = refused(ws, original.run_id, "--task", "c")
    assert "The latest repair ID needs to be provided in order to create a new repair" in missing
    stale = refused(ws, original.run_id, "--task", "c", "--latest-repair-id", str(repaired["id"] + 1000))
    assert str(repaired["id"] + 1000) in stale
    assert "latest" in stale.lower()
    assert len(history(ws, original.run_id)) == 2
    assert logged(ws) == ["a", "b", "c"]

    again = repair(ws, original.run_id, "--task", "c", "--latest-repair-id", str(repaired["id"]))
    assert again.returncode == 0, again.stderr
    assert again.run.result_state == "SUCCESS"
    assert [len(entries(again.run, k)) for k in ("a", "b", "c")] == [1, 2, 3]
    assert logged(ws) == ["a", "b", "c", "c"]
    third = history(ws, original.run_id)
    assert [h["type"] for h in third] == ["ORIGINAL", "REPAIR", "REPAIR"]
    assert third[2]["id"] != repaired["id"]
    assert third[2]["task_run_ids"] == [entries(again.run, "c")[2]["run_id"]]


def test_repair_that_fails_again_exits_1_and_keeps_the_run_failed(ws: Workspace) -> None:
    original = failed_chain(ws)
    still = repair(ws, original.run_id, "--all-failed")  # nothing fixed yet
    assert still.returncode == 1
    assert still.run.result_state == "FAILED"
    assert [len(entries(still.run, k)) for k in ("a", "b", "c")] == [1, 2, 2]
    assert [task_result(t) for t in entries(still.run, "c")] == ["UPSTREAM_FAILED", "UPSTREAM_FAILED"]
    assert "not fixed yet" in still.run.task("b")["state"]["state_message"]
    last = history(ws, original.run_id)[-1]
    assert (last["type"], last["state"]["result_state"]) == ("REPAIR", "FAILED")


# ------------------------------------------------------------------------------------------ what re-runs


def test_all_failed_reruns_timed_out_tasks_and_their_upstream_failed_dependents_only(ws: Workspace) -> None:
    fixed = ws.dir / "fixed"
    ws.write("slow.py", f"import os, time\nif not os.path.exists({str(fixed)!r}):\n    time.sleep(30)\n")
    job = ws.job(
        [
            py_task("work", "slow.py", timeout_seconds=1),
            py_task("publish", "ok.py", deps=["work"]),
            py_task("cleanup", "ok.py", deps=["work"], run_if="ALL_DONE"),
        ]
    )
    original = ws.run(job).run
    assert original.results() == {"work": "TIMEDOUT", "publish": "UPSTREAM_FAILED", "cleanup": "SUCCESS"}
    assert original.result_state == "FAILED"
    fixed.touch()
    done = repair(ws, original.run_id, "--all-failed")
    assert done.returncode == 0, done.stderr
    assert done.run.results() == {"work": "SUCCESS", "publish": "SUCCESS", "cleanup": "SUCCESS"}
    assert [len(entries(done.run, k)) for k in ("work", "publish", "cleanup")] == [2, 2, 1]
    assert done.run.result_state == "SUCCESS", "the result is recomputed from each task's latest task run"


def test_kept_task_values_are_read_by_the_rerun_task(ws: Workspace) -> None:
    ws.write(
        "produce.py",
        """
        from sluice.runtime import dbutils
        dbutils.jobs.taskValues.set("k", "kept-value")
        dbutils.jobs.taskValues.set("n", 7)
        """,
    )
    out = ws.dir / "consumer.json"
    ws.write(
        "consume.py",
        f"""
        import json, os, sys
        from sluice.runtime import dbutils
        if not os.path.exists({str(ws.dir / "fixed")!r}):
            raise RuntimeError("not fixed yet")
        got = {{"argv": sys.argv[1:], "n": dbutils.jobs.taskValues.get(taskKey="producer", key="n")}}
        with open({str(out)!r}, "w") as f:
            json.dump(got, f)
        """,
    )
    job = ws.job(
        [
            py_task("producer", "produce.py"),
            py_task("consumer", "consume.py", params=["{{tasks.producer.values.k}}"], deps=["producer"]),
        ]
    )
    original = ws.run(job).run
    assert original.results() == {"producer": "SUCCESS", "consumer": "FAILED"}
    (ws.dir / "fixed").touch()
    done = repair(ws, original.run_id, "--task", "consumer")
    assert done.returncode == 0, done.stderr
    assert len(entries(done.run, "producer")) == 1, "the producer was kept"
    assert json.loads(out.read_text()) == {"argv": ["kept-value"], "n": 7}
    resolved = done.run.task("consumer")["resolved_values"]["spark_python_task"]["parameters"]
    assert resolved == ["kept-value"]


def test_dependents_reruns_succeeded_downstream_tasks_only_when_asked(ws: Workspace) -> None:
    ws.write("step.py", STEP)
    job = ws.job(
        [
            step(ws, "a"),
            step(ws, "b", deps=["a"]),
            step(ws, "c", deps=["b"]),
            step(ws, "other"),
        ]
    )
    original = ws.run(job).run
    assert original.result_state == "SUCCESS"
    assert sorted(logged(ws)) == ["a", "b", "c", "other"]

    alone = repair(ws, original.run_id, "--task", "b")
    assert alone.returncode == 0, alone.stderr
    assert [len(entries(alone.run, k)) for k in ("a", "b", "c", "other")] == [1, 2, 1, 1]
    assert logged(ws)[4:] == ["b"], "without --dependents the succeeded c is kept"

    latest = str(history(ws, original.run_id)[-1]["id"])
    both = repair(ws, original.run_id, "--task", "b", "--dependents", "--latest-repair-id", latest)
    assert both.returncode == 0, both.stderr
    assert [len(entries(both.run, k)) for k in ("a", "b", "c", "other")] == [1, 3, 2, 1]
    assert logged(ws)[5:] == ["b", "c"]
    c_runs = [t["run_id"] for t in entries(both.run, "c")]
    assert len(set(c_runs)) == 2
    assert both.run.result_state == "SUCCESS"


def test_task_reruns_its_unsuccessful_downstream_tasks(ws: Workspace) -> None:
    """``--task b`` re-runs b and the UPSTREAM_FAILED c; a and the independent d keep their results."""
    ws.write("step.py", STEP)
    job = ws.job(
        [
            step(ws, "a"),
            step(ws, "b", needs="fixed", deps=["a"]),
            step(ws, "c", deps=["b"]),
            step(ws, "d", deps=["a"]),
        ]
    )
    original = ws.run(job).run
    assert original.results() == {"a": "SUCCESS", "b": "FAILED", "c": "UPSTREAM_FAILED", "d": "SUCCESS"}
    (ws.dir / "fixed").touch()
    done = repair(ws, original.run_id, "--task", "b")
    assert done.returncode == 0, done.stderr
    assert done.run.results() == {"a": "SUCCESS", "b": "SUCCESS", "c": "SUCCESS", "d": "SUCCESS"}
    assert [len(entries(done.run, k)) for k in ("a", "b", "c", "d")] == [1, 2, 2, 1]
    assert sorted(logged(ws)) == ["a", "b", "c", "d"]


def test_repair_uses_the_jobs_current_settings(ws: Workspace) -> None:
    """After ``jobs reset`` the re-run task runs with the new settings, not the run's original snapshot."""
    original = failed_chain(ws)
    settings = ws.json("jobs", "get", str(original.job_id))["settings"]
    b = next(t for t in settings["tasks"] if t["task_key"] == "b")
    b["spark_python_task"]["parameters"][1] = "-"  # b no longer needs the fix
    b["spark_python_task"]["parameters"].append("new-settings")
    body = ws.write("reset.json", json.dumps({"job_id": original.job_id, "new_settings": settings}))
    reset = ws.cli("jobs", "reset", str(original.job_id), "--json", str(body))
    assert reset.returncode == 0, reset.stderr

    done = repair(ws, original.run_id, "--all-failed")
    assert done.returncode == 0, done.stderr
    assert logged(ws) == ["a", "b new-settings", "c"]
    resolved = done.run.task("b")["resolved_values"]["spark_python_task"]["parameters"]
    assert resolved[-1] == "new-settings"


# ------------------------------------------------------------------------------- parameters and counters


def test_param_overrides_a_job_parameter_for_the_repair(ws: Workspace) -> None:
    ws.write("step.py", STEP)
    job = ws.job(
        [step(ws, "a"), step(ws, "b", needs="fixed", deps=["a"], args=("{{job.parameters.env}}",))],
        parameters=[{"name": "env", "default": "dev"}],
    )
    original = ws.run(job).run
    assert task_result(original.task("b")) == "FAILED"
    (ws.dir / "fixed").touch()
    done = repair(ws, original.run_id, "--all-failed", "--param", "env=prod")
    assert done.returncode == 0, done.stderr
    assert logged(ws) == ["a", "b prod"]
    assert done.run.data["job_parameters"] == [{"name": "env", "default": "dev", "value": "prod"}]
    assert ws.get_run(original.run_id).data["job_parameters"][0]["value"] == "prod"


def test_invalid_repair_requests_name_the_problem_and_repair_nothing(ws: Workspace) -> None:
    original = failed_chain(ws)
    unknown_task = refused(ws, original.run_id, "--task", "bb", codes=(2,))
    assert "'bb'" in unknown_task
    assert "'b'" in unknown_task, "the closest task key is suggested"
    unknown_param = refused(ws, original.run_id, "--all-failed", "--param", "colour=blue", codes=(2,))
    assert "colour" in unknown_param
    refused(ws, original.run_id, codes=(2,))  # neither --task nor --all-failed
    assert refused(ws, 999, "--all-failed")  # no such run
    run = ws.get_run(original.run_id)
    assert run.data.get("repair_history", []) == []
    assert len(run.tasks) == 3
    assert run.result_state == "FAILED"


def test_rerun_task_sees_repair_count_and_execution_count(ws: Workspace) -> None:
    ws.write("step.py", STEP)
    counters = ("{{job.repair_count}}", "{{task.execution_count}}")
    job = ws.job([step(ws, "a", args=counters), step(ws, "b", needs="fixed", deps=["a"], args=counters)])
    original = ws.run(job).run
    assert logged(ws) == ["a 0 1"]
    (ws.dir / "fixed").touch()
    done = repair(ws, original.run_id, "--all-failed")
    assert done.returncode == 0, done.stderr
    assert logged(ws) == ["a 0 1", "b 1 2"], "b's second execution, in the run's first repair"
    resolved = done.run.task("b")["resolved_values"]["spark_python_task"]["parameters"]
    assert resolved[-2:] == ["1", "2"]


# ------------------------------------------------------------------------------------------ active runs


def start_gated_run(ws: Workspace) -> tuple[int, Background, Path]:
    """Start ``wait`` (blocks until ``gate`` exists) -> ``after`` in the background, until ``wait`` runs."""
    ws.write("gate.py", GATE)
    pid_file, gate = ws.dir / "pid", ws.dir / "gate"
    job = ws.job(
        [
            py_task("wait", "gate.py", params=[str(pid_file), str(gate)]),
            py_task("after", "ok.py", deps=["wait"]),
        ]
    )
    bg = ws.start("run", str(job), "--output", "json")
    run_id = ws.wait_active_run()
    ws.wait_task_running(run_id, "wait")
    wait_for(lambda: read_pid(pid_file), timeout=30, what="the gate task's pid")
    return run_id, bg, gate


def assert_in_progress(message: str, run_id: int) -> None:
    assert str(run_id) in message, message
    assert "progress" in message.lower() or "running" in message.lower(), message


@pytest.mark.slow
def test_active_runs_refuse_repairs_and_a_canceled_run_is_repaired_in_the_background(ws: Workspace) -> None:
    run_id, bg, gate = start_gated_run(ws)
    assert_in_progress(refused(ws, run_id, "--all-failed"), run_id)
    assert ws.get_run(run_id).life_cycle_state == "RUNNING", "the refused repair disturbed the run"

    cancel = ws.cli("runs", "cancel", str(run_id))
    assert cancel.returncode == 0, cancel.stderr
    canceled = bg.finish(timeout=30).run
    assert canceled.results() == {"wait": "CANCELED", "after": "UPSTREAM_CANCELED"}

    # Without --wait: {"repair_id": N} at once, a background process drives the repair (CANCELED and
    # UPSTREAM_CANCELED tasks are unsuccessful, so --all-failed re-runs both).
    started = ws.cli("runs", "repair", str(run_id), "--all-failed")
    assert started.returncode == 0, started.stderr
    repair_id = json.loads(started.stdout)["repair_id"]
    assert isinstance(repair_id, int)
    ws.wait_task_running(run_id, "wait")
    # A repair in progress makes the run active again: another repair is refused even with the right id.
    assert_in_progress(refused(ws, run_id, "--task", "after", "--latest-repair-id", str(repair_id)), run_id)

    gate.touch()

    def finished() -> Run | None:
        run = ws.get_run(run_id)
        return run if run.life_cycle_state == "TERMINATED" else None

    run = wait_for(finished, timeout=30, what="the background repair to finish", interval=0.1)
    assert run.results() == {"wait": "SUCCESS", "after": "SUCCESS"}
    assert run.result_state == "SUCCESS"
    assert [len(entries(run, k)) for k in ("wait", "after")] == [2, 2]
    assert [h.get("id") for h in history(ws, run_id)] == [None, repair_id]


# ------------------------------------------------------------------------------------------ condition routing


QUALITY_CHECK = """
import sys
from sluice.runtime import dbutils
with open(sys.argv[1]) as f:  # fails while the counts file is missing
    rejected, total = map(int, f.read().split())
dbutils.jobs.taskValues.set("reject_rate", rejected / total)
"""


def test_condition_routed_run_routes_again_after_its_check_is_fixed(ws: Workspace) -> None:
    ws.write("check.py", QUALITY_CHECK)
    counts = ws.dir / "counts.txt"
    rate = "{{tasks.check.values.reject_rate}}"
    route = {
        "task_key": "route",
        "depends_on": [{"task_key": "check"}],
        "condition_task": {"op": "GREATER_THAN", "left": rate, "right": "0.05"},
    }
    quarantine = py_task("quarantine", "ok.py", depends_on=[{"task_key": "route", "outcome": "true"}])
    gold = py_task("gold", "ok.py", depends_on=[{"task_key": "route", "outcome": "false"}])
    job = ws.job([py_task("check", "check.py", params=[str(counts)]), route, quarantine, gold])
    original = ws.run(job).run
    assert original.results() == {
        "check": "FAILED",
        "route": "UPSTREAM_FAILED",
        "quarantine": "UPSTREAM_FAILED",
        "gold": "UPSTREAM_FAILED",
    }

    counts.write_text("8 100\n")
    done = repair(ws, original.run_id, "--all-failed")
    assert done.returncode == 0, done.stderr
    assert done.run.results() == {
        "check": "SUCCESS",
        "route": "SUCCESS",
        "quarantine": "SUCCESS",
        "gold": "EXCLUDED",
    }
    assert done.run.task("route")["condition_task"]["outcome"] == "true"
    assert done.run.task("route")["resolved_values"]["condition_task"] == {"left": "0.08", "right": "0.05"}

    counts.write_text("1 100\n")  # the data changed: a repair with --dependents routes the other way
    latest = str(history(ws, original.run_id)[-1]["id"])
    again = repair(ws, original.run_id, "--task", "check", "--dependents", "--latest-repair-id", latest)
    assert again.returncode == 0, again.stderr
    assert again.run.results() == {
        "check": "SUCCESS",
        "route": "SUCCESS",
        "quarantine": "EXCLUDED",
        "gold": "SUCCESS",
    }
    assert again.run.task("route")["condition_task"]["outcome"] == "false"
    assert again.run.result_state == "SUCCESS"
