"""Repair runs: which tasks a repair re-runs, and when a repair is refused (sluice.engine.repair)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sluice.engine.repair import MISSING_REPAIR_ID, repair_run
from sluice.errors import ConflictError, InvalidRequestError
from sluice.store import Store

# a -> b -> c, and a -> d (d succeeded), x independent
SETTINGS: dict[str, Any] = {
    "name": "r",
    "parameters": [{"name": "p", "default": "one"}],
    "tasks": [
        {"task_key": "a", "spark_python_task": {"python_file": "a.py"}},
        {"task_key": "b", "depends_on": [{"task_key": "a"}], "spark_python_task": {"python_file": "b.py"}},
        {"task_key": "c", "depends_on": [{"task_key": "b"}], "spark_python_task": {"python_file": "c.py"}},
        {"task_key": "d", "depends_on": [{"task_key": "a"}], "spark_python_task": {"python_file": "d.py"}},
        {"task_key": "x", "spark_python_task": {"python_file": "x.py"}},
    ],
}
RESULTS = {"a": "SUCCESS", "b": "FAILED", "c": "UPSTREAM_FAILED", "d": "SUCCESS", "x": "TIMEDOUT"}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open("sqlite:///:memory:", tmp_path)


def finished_run(store: Store, results: dict[str, str] = RESULTS) -> int:
    job = store.create_job(SETTINGS, now=1)
    run, _ = store.create_run(
        job_id=job.job_id,
        settings=SETTINGS,
        run_name="r",
        run_type="JOB_RUN",
        trigger="ONE_TIME",
        job_parameters=[{"name": "p", "default": "one", "value": "one"}],
        overriding_parameters={},
        now=10,
        queue_enabled=True,
        max_concurrent_runs=1,
    )
    for key, result in results.items():
        tr = store.create_task_run(
            job_run_id=run.run_id, task_key=key, attempt_number=0, state="BLOCKED", now=10
        )
        life = "SKIPPED" if result.startswith("UPSTREAM") else "TERMINATED"
        store.update_task_run(tr.run_id, state=life, result_state=result, start_time=11, end_time=12)
        store.put_task_values(run.run_id, key, {"v": key})
    store.update_run(run.run_id, state="TERMINATED", result_state="FAILED", end_time=20)
    return run.run_id


def rerun(store: Store, run_id: int) -> list[str]:
    repair = store.list_repairs(run_id)[-1]
    by_id = {tr.run_id: tr.task_key for tr in store.list_task_runs(run_id)}
    return [by_id[i] for i in repair.task_run_ids]


def test_all_failed_reruns_unsuccessful_tasks_and_their_unsuccessful_dependents(store: Store) -> None:
    run_id = finished_run(store)
    repair_run(store, run_id, now=30, rerun_all_failed_tasks=True)
    assert sorted(rerun(store, run_id)) == ["b", "c", "x"]
    run = store.get_run(run_id)
    assert (run.state, run.result_state, run.end_time, run.repair_count) == ("PENDING", None, 0, 1)
    history = store.list_repairs(run_id)
    assert [r.type for r in history] == ["ORIGINAL", "REPAIR"]
    assert (history[0].result_state, history[0].end_time) == ("FAILED", 20)
    values = store.get_task_values(run_id)
    assert values["a"] == {"v": "a"}  # kept
    assert values.get("b", {}) == {}  # re-run: cleared


def test_a_task_brings_its_downstream_tasks_that_did_not_succeed(store: Store) -> None:
    run_id = finished_run(store)
    repair_run(store, run_id, now=30, rerun_tasks=["a"])
    assert rerun(store, run_id) == ["a", "b", "c"]  # d succeeded: kept


def test_dependents_brings_succeeded_downstream_tasks_too(store: Store) -> None:
    run_id = finished_run(store)
    repair_run(store, run_id, now=30, rerun_tasks=["a"], rerun_dependent_tasks=True)
    order = rerun(store, run_id)
    assert sorted(order) == ["a", "b", "c", "d"]
    assert order.index("a") < order.index("b") < order.index("c")  # dependencies first


def test_second_repair_needs_the_latest_repair_id(store: Store) -> None:
    run_id = finished_run(store)
    first = repair_run(store, run_id, now=30, rerun_all_failed_tasks=True)
    store.update_run(run_id, state="TERMINATED", result_state="FAILED", end_time=40)
    with pytest.raises(ConflictError, match=MISSING_REPAIR_ID):
        repair_run(store, run_id, now=50, rerun_tasks=["x"])
    with pytest.raises(ConflictError, match="is not the latest repair"):
        repair_run(store, run_id, now=50, rerun_tasks=["x"], latest_repair_id=first.repair_id + 100)
    second = repair_run(store, run_id, now=50, rerun_tasks=["x"], latest_repair_id=first.repair_id)
    assert [r.type for r in store.list_repairs(run_id)] == ["ORIGINAL", "REPAIR", "REPAIR"]
    assert second.repair_id != first.repair_id
    assert store.get_run(run_id).repair_count == 2


def test_refusals(store: Store) -> None:
    run_id = finished_run(store)
    with pytest.raises(InvalidRequestError, match="omit latest_repair_id"):
        repair_run(store, run_id, now=30, rerun_all_failed_tasks=True, latest_repair_id=5)
    with pytest.raises(InvalidRequestError, match="did you mean 'b'"):
        repair_run(store, run_id, now=30, rerun_tasks=["bb"])
    with pytest.raises(InvalidRequestError, match="either rerun_tasks"):
        repair_run(store, run_id, now=30)
    with pytest.raises(InvalidRequestError, match="either rerun_tasks"):
        repair_run(store, run_id, now=30, rerun_tasks=["b"], rerun_all_failed_tasks=True)
    with pytest.raises(InvalidRequestError, match=r"nope"):
        repair_run(store, run_id, now=30, rerun_tasks=["b"], job_parameters={"nope": "1"})
    store.update_run(run_id, state="RUNNING", result_state=None)
    with pytest.raises(ConflictError, match="still in progress"):
        repair_run(store, run_id, now=30, rerun_tasks=["b"])
    assert store.list_repairs(run_id) == []  # nothing was written by the refused repairs


def test_nothing_to_rerun(store: Store) -> None:
    run_id = finished_run(store, dict.fromkeys(RESULTS, "SUCCESS"))
    with pytest.raises(InvalidRequestError, match="no unsuccessful task"):
        repair_run(store, run_id, now=30, rerun_all_failed_tasks=True)


def test_parameters_override_and_keep_the_others(store: Store) -> None:
    run_id = finished_run(store)
    repair_run(store, run_id, now=30, rerun_tasks=["b"], job_parameters={"p": "two"})
    assert store.get_run(run_id).job_parameters == [{"name": "p", "default": "one", "value": "two"}]
