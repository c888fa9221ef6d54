"""run_if, EXCLUDED, DISABLED and the leaf-based job result, through ``sluice run`` (databricks.md §1.5)."""

from __future__ import annotations

from e2e.helpers import Workspace, py_task, task_life, task_message, task_result


def seed_job(ws: Workspace, ingest_script: str) -> list[dict[str, object]]:
    """The seed's shape: ingest -> transform (ALL_SUCCESS) and ingest -> alert (AT_LEAST_ONE_FAILED)."""
    return [
        py_task("ingest", ingest_script),
        py_task("transform", "ok.py", deps=["ingest"]),
        py_task("alert", "ok.py", deps=["ingest"], run_if="AT_LEAST_ONE_FAILED"),
    ]


def test_seed_ingest_succeeds_alert_is_excluded(ws: Workspace) -> None:
    done = ws.run(ws.job(seed_job(ws, "ok.py")))
    run = done.run
    assert run.results() == {"ingest": "SUCCESS", "transform": "SUCCESS", "alert": "EXCLUDED"}
    assert run.lives() == {"ingest": "TERMINATED", "transform": "TERMINATED", "alert": "SKIPPED"}
    assert run.life_cycle_state == "TERMINATED"
    assert run.result_state == "SUCCESS"
    assert run.data["status"]["state"] == "TERMINATED"
    assert done.returncode == 0
    assert [len(run.attempts(k)) for k in ("ingest", "transform", "alert")] == [1, 1, 1]
    assert run.task("alert")["start_time"] == 0  # an excluded task never started


def test_seed_ingest_fails_transform_upstream_failed_alert_runs(ws: Workspace) -> None:
    done = ws.run(ws.job(seed_job(ws, "fail.py")))
    run = done.run
    assert run.results() == {"ingest": "FAILED", "transform": "UPSTREAM_FAILED", "alert": "SUCCESS"}
    assert run.lives() == {"ingest": "TERMINATED", "transform": "SKIPPED", "alert": "TERMINATED"}
    assert run.result_state == "FAILED"  # the leaf transform did not succeed
    assert done.returncode == 1
    assert "ValueError: bad input row 7" in task_message(run.task("ingest"))


def test_failure_handled_by_all_done_leaf_is_success_with_failures(ws: Workspace) -> None:
    done = ws.run(
        ws.job([py_task("work", "fail.py"), py_task("cleanup", "ok.py", deps=["work"], run_if="ALL_DONE")])
    )
    assert done.run.results() == {"work": "FAILED", "cleanup": "SUCCESS"}
    assert done.run.result_state == "SUCCESS_WITH_FAILURES"
    assert done.run.data["status"]["termination_details"]["code"] == "SUCCESS_WITH_FAILURES"
    assert done.returncode == 0


def test_every_run_if_rule(ws: Workspace) -> None:
    tasks = [
        py_task("good", "ok.py"),
        py_task("bad", "fail.py"),
        py_task("none_failed_met", "ok.py", deps=["good"], run_if="NONE_FAILED"),
        py_task("none_failed_unmet", "ok.py", deps=["good", "bad"], run_if="NONE_FAILED"),
        py_task("one_success_met", "ok.py", deps=["good", "bad"], run_if="AT_LEAST_ONE_SUCCESS"),
        py_task("one_success_unmet", "ok.py", deps=["bad"], run_if="AT_LEAST_ONE_SUCCESS"),
        py_task("all_failed_met", "ok.py", deps=["bad"], run_if="ALL_FAILED"),
        py_task("all_failed_unmet", "ok.py", deps=["good", "bad"], run_if="ALL_FAILED"),
        py_task("all_done", "ok.py", deps=["good", "bad"], run_if="ALL_DONE"),
        py_task("one_failed_met", "ok.py", deps=["good", "bad"], run_if="AT_LEAST_ONE_FAILED"),
        py_task("one_failed_unmet", "ok.py", deps=["good"], run_if="AT_LEAST_ONE_FAILED"),
        py_task("all_success_unmet", "ok.py", deps=["good", "bad"]),
    ]
    done = ws.run(ws.job(tasks))
    assert done.run.results() == {
        "good": "SUCCESS",
        "bad": "FAILED",
        "none_failed_met": "SUCCESS",
        "none_failed_unmet": "UPSTREAM_FAILED",
        "one_success_met": "SUCCESS",
        "one_success_unmet": "UPSTREAM_FAILED",
        "all_failed_met": "SUCCESS",
        "all_failed_unmet": "EXCLUDED",
        "all_done": "SUCCESS",
        "one_failed_met": "SUCCESS",
        "one_failed_unmet": "EXCLUDED",
        "all_success_unmet": "UPSTREAM_FAILED",
    }
    assert done.run.result_state == "FAILED"  # some leaves are UPSTREAM_FAILED
    assert done.returncode == 1


def test_excluded_counts_as_success_and_all_excluded_deps_exclude(ws: Workspace) -> None:
    tasks = [
        py_task("good", "ok.py"),
        py_task("alert", "ok.py", deps=["good"], run_if="AT_LEAST_ONE_FAILED"),  # EXCLUDED
        # EXCLUDED counts as success downstream:
        py_task("after_both", "ok.py", deps=["good", "alert"]),
        # every dependency EXCLUDED: EXCLUDED whatever the run_if
        py_task("only_excluded_all_success", "ok.py", deps=["alert"]),
        py_task("only_excluded_all_done", "ok.py", deps=["alert"], run_if="ALL_DONE"),
        py_task("only_excluded_one_failed", "ok.py", deps=["alert"], run_if="AT_LEAST_ONE_FAILED"),
    ]
    done = ws.run(ws.job(tasks))
    assert done.run.results() == {
        "good": "SUCCESS",
        "alert": "EXCLUDED",
        "after_both": "SUCCESS",
        "only_excluded_all_success": "EXCLUDED",
        "only_excluded_all_done": "EXCLUDED",
        "only_excluded_one_failed": "EXCLUDED",
    }
    for key in ("alert", "only_excluded_all_success", "only_excluded_all_done"):
        assert task_life(done.run.task(key)) == "SKIPPED"
    assert done.run.result_state == "SUCCESS"  # excluded leaves count as succeeded
    assert done.returncode == 0


def test_disabled_task_and_its_all_success_child_are_disabled(ws: Workspace) -> None:
    marker = ws.dir / "disabled-ran"
    ws.write("touch.py", f"open({str(marker)!r}, 'w').close()\n")
    tasks = [
        py_task("off", "touch.py", disabled=True),
        py_task("child", "touch.py", deps=["off"]),
        py_task("independent", "ok.py"),
    ]
    done = ws.run(ws.job(tasks))
    assert done.run.results() == {"off": "DISABLED", "child": "DISABLED", "independent": "SUCCESS"}
    assert task_life(done.run.task("off")) == "SKIPPED"
    assert task_life(done.run.task("child")) == "SKIPPED"
    assert not marker.exists(), "a disabled task (or its child) ran"
    assert done.run.result_state == "SUCCESS"
    assert done.returncode == 0
    assert task_result(done.run.task("independent")) == "SUCCESS"
