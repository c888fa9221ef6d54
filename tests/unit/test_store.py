"""The store's contract: one suite, run against SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.errors import ConflictError, InternalError, InvalidRequestError, NotFoundError
from sluice.store import Store
from sluice.store.records import RunRecord
from sluice.store.testing import postgres_schema, require_postgres, reset_postgres

JOB = {"name": "Nightly ETL", "max_concurrent_runs": 1, "tasks": [{"task_key": "a"}]}


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite database: each test starts from a copy (migrating once per session)."""
    home = tmp_path_factory.mktemp("store-template")
    Store.open(None, home).close()
    return home / "sluice.db"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_schema(require_postgres()) as url:
        Store.open(url, Path("/nonexistent")).close()
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_store(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Callable[[], Store]:
    """Opens a Store on this test's (empty) database; each call is a new connection."""
    if request.param == "sqlite":
        shutil.copy(sqlite_template, tmp_path / "sluice.db")
        return lambda: Store.open(None, tmp_path)
    url = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    return lambda: Store.open(url, tmp_path)


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Iterator[Store]:
    with open_store() as opened:
        yield opened


def new_run(store: Store, job_id: int | None, **overrides: Any) -> RunRecord:
    args: dict[str, Any] = {
        "job_id": job_id,
        "settings": {"name": "n", "tasks": [{"task_key": "a"}]},
        "run_name": "n",
        "run_type": "JOB_RUN",
        "trigger": "ONE_TIME",
        "job_parameters": [{"name": "p", "default": "1", "value": "2"}],
        "overriding_parameters": {"notebook_params": {"x": "y"}},
        "now": 1000,
        "queue_enabled": True,
        "max_concurrent_runs": 1,
        "driver": "host:1:2",
    }
    args.update(overrides)
    run, created = store.create_run(**args)
    assert created
    return run


def finish(store: Store, run_id: int) -> None:
    store.update_run(run_id, state="TERMINATED", result_state="SUCCESS", end_time=2000)


# --- jobs -----------------------------------------------------------------------------------------------


def test_create_and_get_job_round_trip(store: Store) -> None:
    job = store.create_job(JOB, now=5, bundle_key="b/etl", source_path="/x/job.yml", creator="ann")
    assert (job.job_id, job.created_time, job.updated_time) == (1, 5, 5)
    assert store.get_job(job.job_id) == job
    assert job.settings == JOB
    assert store.create_job({"name": "other"}, now=6).job_id == 2


def test_get_missing_job_names_it(store: Store) -> None:
    with pytest.raises(NotFoundError, match=r"^Job 42 does not exist\.$"):
        store.get_job(42)


def test_bundle_key_finds_the_job_and_is_unique(store: Store) -> None:
    job = store.create_job(JOB, now=1, bundle_key="bundle/etl")
    assert store.find_job_by_bundle_key("bundle/etl") == job
    assert store.find_job_by_bundle_key("bundle/other") is None
    with pytest.raises(ConflictError, match="bundle/etl"):
        store.create_job(JOB, now=2, bundle_key="bundle/etl")
    store.create_job(JOB, now=3)
    store.create_job(JOB, now=4)  # jobs without a bundle key do not collide
    assert store.count_jobs() == 3


def test_list_jobs_by_id_with_exact_case_insensitive_name(store: Store) -> None:
    ids = [store.create_job({"name": name}, now=1).job_id for name in ("Alpha", "beta", "ALPHA", "alphabet")]
    assert [j.job_id for j in store.list_jobs()] == ids
    assert [j.job_id for j in store.list_jobs(name="alpha")] == [ids[0], ids[2]]
    assert [j.job_id for j in store.list_jobs(limit=2, offset=1)] == ids[1:3]
    assert store.list_jobs(name="gamma") == []
    assert store.count_jobs() == 4


def test_update_job_replaces_settings(store: Store) -> None:
    job = store.create_job(JOB, now=1, source_path="/a.yml", creator="ann")
    updated = store.update_job(job.job_id, {"name": "Renamed"}, now=9)
    assert updated.settings == {"name": "Renamed"}
    assert (updated.created_time, updated.updated_time, updated.creator_user_name) == (1, 9, "ann")
    assert updated.source_path == "/a.yml"
    assert store.get_job(job.job_id) == updated
    assert [j.job_id for j in store.list_jobs(name="renamed")] == [job.job_id]
    assert store.update_job(job.job_id, JOB, now=10, source_path="/b.yml").source_path == "/b.yml"
    with pytest.raises(NotFoundError, match="Job 99 does not exist"):
        store.update_job(99, JOB, now=1)


def test_deleted_job_keeps_its_runs(store: Store) -> None:
    job = store.create_job(JOB, now=1)
    run = new_run(store, job.job_id)
    store.delete_job(job.job_id, now=0)
    with pytest.raises(NotFoundError):
        store.get_job(job.job_id)
    assert store.get_run(run.run_id).job_id == job.job_id
    assert [r.run_id for r in store.list_runs(job_id=job.job_id)] == [run.run_id]
    with pytest.raises(NotFoundError, match=f"Job {job.job_id} does not exist"):
        store.delete_job(job.job_id, now=0)
    with pytest.raises(NotFoundError, match=f"Job {job.job_id} does not exist"):
        new_run(store, job.job_id)


# --- runs: admission ------------------------------------------------------------------------------------


def test_create_run_round_trips_every_field(store: Store) -> None:
    job = store.create_job(JOB, now=1)
    parent = new_run(store, None, run_type="SUBMIT_RUN")
    run = new_run(
        store,
        job.job_id,
        now=1234,
        trigger="RUN_JOB_TASK",
        parent_run_id=parent.run_id,
        trigger_info={"run_id": 77},
        only_tasks=["a", "b"],
        idempotency_token="tok",
        max_concurrent_runs=5,
    )
    assert run.state == "PENDING"
    assert (run.start_time, run.created_time, run.heartbeat_time, run.driver) == (
        1234,
        1234,
        1234,
        "host:1:2",
    )
    assert (run.end_time, run.queue_time, run.queue_reason, run.result_state) == (0, 0, None, None)
    assert store.get_run(run.run_id) == run
    assert store.get_run(run.run_id).only_tasks == ["a", "b"]
    assert store.get_run(parent.run_id).only_tasks is None


def test_runs_beyond_the_limit_queue(store: Store) -> None:
    job = store.create_job(JOB, now=1)
    first, second = (new_run(store, job.job_id, max_concurrent_runs=2, now=n) for n in (10, 11))
    queued = new_run(store, job.job_id, max_concurrent_runs=2, now=12)
    assert (first.state, second.state, queued.state) == ("PENDING", "PENDING", "QUEUED")
    assert queued.queue_reason == "MAX_CONCURRENT_RUNS_REACHED"
    assert (queued.queue_time, queued.start_time, queued.driver, queued.end_time) == (12, 0, None, 0)
    assert store.get_run(queued.run_id) == queued


def test_runs_beyond_the_limit_skip_without_queue(store: Store) -> None:
    job = store.create_job(JOB, now=1)
    new_run(store, job.job_id, queue_enabled=False)
    skipped = new_run(store, job.job_id, queue_enabled=False, now=50)
    assert skipped.state == "SKIPPED"
    assert skipped.result_state == "MAXIMUM_CONCURRENT_RUNS_REACHED"
    assert (skipped.termination_code, skipped.termination_type) == (
        "MAX_CONCURRENT_RUNS_EXCEEDED",
        "CLIENT_ERROR",
    )
    assert skipped.state_message == (
        "Skipping this run because the limit of 1 maximum concurrent runs has been reached."
    )
    assert (skipped.end_time, skipped.driver) == (50, None)
    assert store.get_run(skipped.run_id) == skipped


def test_zero_concurrent_runs_skips_every_run(store: Store) -> None:
    job = store.create_job(JOB, now=1)
    run = new_run(store, job.job_id, max_concurrent_runs=0, queue_enabled=True)
    assert run.state == "SKIPPED"
    assert "limit of 0 maximum concurrent runs" in run.state_message


def test_queued_and_skipped_runs_do_not_take_slots(store: Store) -> None:
    job = store.create_job(JOB, now=1)
    active = new_run(store, job.job_id)
    new_run(store, job.job_id, queue_enabled=False)
    store.update_run(active.run_id, state="RUNNING")
    assert new_run(store, job.job_id).state == "QUEUED"
    store.update_run(active.run_id, state="TERMINATING")
    assert new_run(store, job.job_id).state == "QUEUED"
    finish(store, active.run_id)
    # A slot is free, but two older runs are queued: a new run waits behind them.
    assert new_run(store, job.job_id).state == "QUEUED"


def test_runs_without_a_job_are_never_limited(store: Store) -> None:
    runs = [new_run(store, None, run_type="SUBMIT_RUN", max_concurrent_runs=0) for _ in range(3)]
    assert [r.state for r in runs] == ["PENDING"] * 3


def test_still_queued_names_the_runs_that_wait(store: Store) -> None:
    job = store.create_job(JOB, now=1)
    active = new_run(store, job.job_id)
    waiting = [new_run(store, job.job_id, now=2 + i) for i in range(3)]
    store.request_cancel(waiting[1].run_id)
    store.update_run(waiting[1].run_id, state="TERMINATED", result_state="CANCELED", end_time=5)
    ids = [active.run_id, *(r.run_id for r in waiting), 999_999]
    assert store.still_queued(ids) == {waiting[0].run_id, waiting[2].run_id}
    assert store.still_queued([]) == set()


def test_claim_queued_runs_in_fifo_order(store: Store) -> None:
    job = store.create_job(JOB, now=1)
    active = new_run(store, job.job_id)
    first = new_run(store, job.job_id, now=2)
    second = new_run(store, job.job_id, now=3)

    def claim(run_id: int, limit: int = 1) -> RunRecord | None:
        return store.claim_queued_run(run_id, driver="d2", now=9, max_concurrent_runs=limit)

    assert claim(first.run_id) is None  # no free slot
    finish(store, active.run_id)
    assert claim(second.run_id) is None  # not the oldest
    claimed = claim(first.run_id)
    assert claimed is not None
    assert (claimed.state, claimed.driver, claimed.start_time, claimed.heartbeat_time) == (
        "PENDING",
        "d2",
        9,
        9,
    )
    assert claimed.queue_reason is None
    assert claimed.queue_time == 2
    assert store.get_run(first.run_id) == claimed
    assert claim(first.run_id) is None  # no longer queued
    assert claim(second.run_id) is None  # first occupies the slot
    assert claim(second.run_id, limit=2) is not None
    with pytest.raises(NotFoundError, match="Run 999 does not exist"):
        claim(999)


# --- runs: idempotency ----------------------------------------------------------------------------------


def test_idempotency_token_returns_the_earlier_run(store: Store) -> None:
    job, other = store.create_job(JOB, now=1), store.create_job(JOB, now=1)
    run = new_run(store, job.job_id, idempotency_token="t-1")
    again, created = store.create_run(
        **{**_run_args(job.job_id), "idempotency_token": "t-1", "max_concurrent_runs": 10}
    )
    assert (again, created) == (run, False)
    assert len(store.list_runs(job_id=job.job_id)) == 1
    assert new_run(store, other.job_id, idempotency_token="t-1").run_id != run.run_id


def test_idempotency_token_of_runs_without_a_job(store: Store) -> None:
    run = new_run(store, None, idempotency_token="submit-1")
    again, created = store.create_run(**{**_run_args(None), "idempotency_token": "submit-1"})
    assert (again.run_id, created) == (run.run_id, False)


def test_idempotency_token_of_a_deleted_run_is_an_error(store: Store) -> None:
    job = store.create_job(JOB, now=1)
    run = new_run(store, job.job_id, idempotency_token="gone")
    store.delete_run(run.run_id)
    with pytest.raises(ConflictError, match=f"Run {run.run_id}, created with idempotency token 'gone'"):
        store.create_run(**{**_run_args(job.job_id), "idempotency_token": "gone"})


def _run_args(job_id: int | None) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "settings": {},
        "run_name": "again",
        "run_type": "JOB_RUN",
        "trigger": "ONE_TIME",
        "job_parameters": [],
        "overriding_parameters": {},
        "now": 5000,
        "queue_enabled": True,
        "max_concurrent_runs": 1,
    }


# --- runs: reading, updating, deleting ------------------------------------------------------------------


def test_list_runs_newest_first_with_filters(store: Store) -> None:
    job, other = store.create_job(JOB, now=1), store.create_job(JOB, now=1)
    a = new_run(store, job.job_id, now=100, max_concurrent_runs=9)
    b = new_run(store, other.job_id, now=200)
    c = new_run(store, job.job_id, now=300, run_type="WORKFLOW_RUN", max_concurrent_runs=9)
    finish(store, a.run_id)

    def ids(runs: list[RunRecord]) -> list[int]:
        return [r.run_id for r in runs]

    assert ids(store.list_runs()) == [c.run_id, b.run_id, a.run_id]
    assert ids(store.list_runs(job_id=job.job_id)) == [c.run_id, a.run_id]
    assert ids(store.list_runs(active_only=True)) == [c.run_id, b.run_id]
    assert ids(store.list_runs(completed_only=True)) == [a.run_id]
    assert ids(store.list_runs(run_type="WORKFLOW_RUN")) == [c.run_id]
    assert ids(store.list_runs(start_time_from=200)) == [c.run_id, b.run_id]
    assert ids(store.list_runs(start_time_from=150, start_time_to=250)) == [b.run_id]
    assert ids(store.list_runs(limit=1, offset=1)) == [b.run_id]
    with pytest.raises(InvalidRequestError, match="cannot both be true"):
        store.list_runs(active_only=True, completed_only=True)


def test_update_run_sets_any_field(store: Store) -> None:
    run = new_run(store, None)
    store.update_run(
        run.run_id,
        state="TERMINATED",
        result_state="FAILED",
        state_message="boom",
        termination_code="RUN_EXECUTION_ERROR",
        termination_type="CLIENT_ERROR",
        end_time=9,
        settings={"name": "repaired"},
        job_parameters=[],
        trigger_info={"k": [1, 2]},
        only_tasks=None,
        cancel_requested=True,
        git_commit="abc",
        repair_count=2,
        driver=None,
    )
    got = store.get_run(run.run_id)
    assert (got.state, got.result_state, got.state_message, got.end_time) == (
        "TERMINATED",
        "FAILED",
        "boom",
        9,
    )
    assert (got.settings, got.job_parameters, got.trigger_info) == ({"name": "repaired"}, [], {"k": [1, 2]})
    assert (got.cancel_requested, got.git_commit, got.repair_count, got.driver) == (True, "abc", 2, None)
    assert got.start_time == run.start_time


def test_update_run_rejects_unknown_fields_and_missing_runs(store: Store) -> None:
    run = new_run(store, None)
    with pytest.raises(TypeError, match="statee"):
        store.update_run(run.run_id, statee="RUNNING")
    with pytest.raises(TypeError, match="run_id"):
        store.update_run(run.run_id, run_id=5)
    with pytest.raises(NotFoundError, match=r"^Run 424242 does not exist\.$"):
        store.update_run(424242, state="RUNNING")
    with pytest.raises(NotFoundError, match="Run 424242 does not exist"):
        store.get_run(424242)


def test_delete_run_removes_its_task_runs_values_and_repairs(store: Store) -> None:
    run, kept = new_run(store, None), new_run(store, None)
    task = store.create_task_run(
        job_run_id=run.run_id, task_key="a", attempt_number=0, state="PENDING", now=1
    )
    store.put_task_values(run.run_id, "a", {"x": 1})
    store.create_repair(run.run_id, now=5, type="REPAIR")
    store.create_task_run(job_run_id=kept.run_id, task_key="a", attempt_number=0, state="PENDING", now=1)
    store.delete_run(run.run_id)
    with pytest.raises(NotFoundError):
        store.get_run(run.run_id)
    with pytest.raises(NotFoundError):
        store.get_task_run(task.run_id)
    assert store.get_task_values(run.run_id) == {}
    assert store.list_repairs(run.run_id) == []
    assert len(store.list_task_runs(kept.run_id)) == 1
    with pytest.raises(NotFoundError, match=f"Run {run.run_id} does not exist"):
        store.delete_run(run.run_id)


# --- driving and crash safety ---------------------------------------------------------------------------


def test_heartbeat_touches_only_the_drivers_runs(store: Store) -> None:
    mine, theirs = new_run(store, None, driver="me"), new_run(store, None, driver="them")
    store.heartbeat("me", [mine.run_id, theirs.run_id], 5000)
    store.heartbeat("me", [], 6000)
    assert store.get_run(mine.run_id).heartbeat_time == 5000
    assert store.get_run(theirs.run_id).heartbeat_time == theirs.heartbeat_time


def test_request_cancel_cascades_to_child_runs(store: Store) -> None:
    root = new_run(store, None)
    child = new_run(store, None, parent_run_id=root.run_id)
    grandchild = new_run(store, None, parent_run_id=child.run_id)
    sibling = new_run(store, None)
    all_ids = [root.run_id, child.run_id, grandchild.run_id, sibling.run_id]
    assert store.cancel_requested(all_ids) == set()
    store.request_cancel(child.run_id)
    assert store.cancel_requested(all_ids) == {child.run_id, grandchild.run_id}
    store.request_cancel(root.run_id)
    assert store.cancel_requested(all_ids) == {root.run_id, child.run_id, grandchild.run_id}
    assert store.get_run(grandchild.run_id).cancel_requested is True
    assert store.cancel_requested([]) == set()
    with pytest.raises(NotFoundError, match="Run 777 does not exist"):
        store.request_cancel(777)


def test_active_runs_are_the_non_terminal_ones(store: Store) -> None:
    job = store.create_job(JOB, now=1)
    pending = new_run(store, job.job_id)
    queued = new_run(store, job.job_id)
    skipped = new_run(store, job.job_id, queue_enabled=False)
    done = new_run(store, None)
    running = new_run(store, None)
    store.update_run(running.run_id, state="RUNNING")
    finish(store, done.run_id)
    assert skipped.state == "SKIPPED"
    assert [r.run_id for r in store.active_runs()] == [pending.run_id, queued.run_id, running.run_id]


# --- task runs ------------------------------------------------------------------------------------------


def test_task_runs_and_job_runs_share_one_id_sequence(store: Store) -> None:
    first = new_run(store, None)
    task = store.create_task_run(
        job_run_id=first.run_id, task_key="a", attempt_number=0, state="PENDING", now=1
    )
    second = new_run(store, None)
    batch = store.allocate_run_ids(3)
    third = new_run(store, None)
    assert [first.run_id, task.run_id, second.run_id] == [1, 2, 3]
    assert list(batch) == [4, 5, 6]
    assert third.run_id == 7
    given = store.create_task_run(
        job_run_id=first.run_id, task_key="b", attempt_number=0, state="PENDING", now=1, run_id=batch[0]
    )
    assert given.run_id == 4
    assert store.get_task_run(4) == given


def test_task_run_round_trip_and_update(store: Store) -> None:
    run = new_run(store, None)
    first = store.create_task_run(
        job_run_id=run.run_id,
        task_key="each",
        attempt_number=0,
        state="BLOCKED",
        now=10,
        repair_id=0,
        parent_task_run_id=None,
        iteration=None,
        attempt_dir="/runs/1/each/0",
        resolved_values={"notebook_task": {"base_parameters": {"a": "1"}}},
        start_time=11,
    )
    assert (first.created_time, first.start_time, first.end_time, first.output) == (10, 11, 0, {})
    assert store.get_task_run(first.run_id) == first
    store.update_task_run(
        first.run_id,
        state="TERMINATED",
        result_state="FAILED",
        end_time=20,
        error="ValueError: x",
        error_trace="Traceback ...",
        exit_code=1,
        pid=4321,
        outcome="true",
        output={"notebook_output": {"result": "ünïcode"}},
    )
    retry = store.create_task_run(
        job_run_id=run.run_id,
        task_key="each",
        attempt_number=1,
        state="PENDING",
        now=30,
        original_attempt_run_id=first.run_id,
        repair_id=3,
        parent_task_run_id=first.run_id,
        iteration=2,
    )
    got = store.list_task_runs(run.run_id)
    assert [t.run_id for t in got] == [first.run_id, retry.run_id]
    assert (got[0].state, got[0].exit_code, got[0].pid, got[0].outcome) == ("TERMINATED", 1, 4321, "true")
    assert got[0].output == {"notebook_output": {"result": "ünïcode"}}
    assert (got[1].original_attempt_run_id, got[1].repair_id, got[1].iteration) == (first.run_id, 3, 2)
    assert got[1] == retry


def test_task_run_errors_name_the_run(store: Store) -> None:
    with pytest.raises(NotFoundError, match=r"^Run 55 does not exist\.$"):
        store.create_task_run(job_run_id=55, task_key="a", attempt_number=0, state="PENDING", now=1)
    with pytest.raises(NotFoundError, match=r"^Run 56 does not exist\.$"):
        store.get_task_run(56)
    with pytest.raises(NotFoundError, match=r"^Run 57 does not exist\.$"):
        store.update_task_run(57, state="RUNNING")
    with pytest.raises(TypeError, match="job_run"):
        store.update_task_run(1, job_run=3)
    assert store.list_task_runs(58) == []


# --- task values ----------------------------------------------------------------------------------------


def test_task_values_replace_per_task(store: Store) -> None:
    run, other = new_run(store, None), new_run(store, None)
    store.put_task_values(run.run_id, "a", {"n": 1, "list": [1, {"k": None}], "s": "é"})
    store.put_task_values(run.run_id, "b", {"flag": True})
    store.put_task_values(run.run_id, "a", {"n": 2})
    store.put_task_values(other.run_id, "a", {"n": 3})
    assert store.get_task_values(run.run_id) == {"a": {"n": 2}, "b": {"flag": True}}
    assert store.get_task_values(other.run_id) == {"a": {"n": 3}}
    with pytest.raises(NotFoundError, match="Run 999 does not exist"):
        store.put_task_values(999, "a", {})


# --- repairs --------------------------------------------------------------------------------------------


def test_repairs_have_their_own_ids_and_history(store: Store) -> None:
    run = new_run(store, None)
    first = store.create_repair(run.run_id, now=10, type="REPAIR")
    second = store.create_repair(run.run_id, now=20, type="REPAIR")
    assert (first.repair_id, second.repair_id) == (1, 2)
    assert (first.state, first.start_time, first.end_time, first.task_run_ids) == ("PENDING", 10, 0, [])
    store.update_repair(
        first.repair_id, state="TERMINATED", result_state="SUCCESS", end_time=15, task_run_ids=[7]
    )
    history = store.list_repairs(run.run_id)
    assert [r.repair_id for r in history] == [1, 2]
    assert (history[0].state, history[0].result_state, history[0].task_run_ids) == (
        "TERMINATED",
        "SUCCESS",
        [7],
    )
    assert history[1] == second
    with pytest.raises(NotFoundError, match="Repair 99 does not exist"):
        store.update_repair(99, state="RUNNING")
    with pytest.raises(NotFoundError, match="Run 98 does not exist"):
        store.create_repair(98, now=1, type="REPAIR")


# --- transactions ---------------------------------------------------------------------------------------


def test_transaction_commits_once_and_nests(store: Store) -> None:
    with store.transaction():
        job = store.create_job(JOB, now=1)
        with store.transaction():
            run = new_run(store, job.job_id)
        store.update_run(run.run_id, state="RUNNING")
    assert store.get_run(run.run_id).state == "RUNNING"


def test_transaction_rolls_back_everything_on_error(store: Store) -> None:
    def create_then_fail() -> None:
        with store.transaction():
            job = store.create_job(JOB, now=1)
            new_run(store, job.job_id)
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        create_then_fail()
    assert store.count_jobs() == 0
    assert store.list_runs() == []


def test_failed_nested_block_rolls_back_the_outer_transaction(store: Store) -> None:
    def swallow_a_nested_failure() -> None:
        with store.transaction():
            store.create_job(JOB, now=1)
            with pytest.raises(NotFoundError), store.transaction():
                store.get_job(12345)

    with pytest.raises(InternalError, match="nested block failed"):
        swallow_a_nested_failure()
    assert store.count_jobs() == 0


def test_uncommitted_writes_are_invisible_to_other_connections(
    store: Store, open_store: Callable[[], Store]
) -> None:
    job = store.create_job(JOB, now=1)
    with open_store() as reader:
        with store.transaction():
            store.update_job(job.job_id, {"name": "changed"}, now=2)
            assert reader.get_job(job.job_id).settings == JOB
        assert reader.get_job(job.job_id).settings == {"name": "changed"}


# --- deleting a job under its runs, failing one block of a transaction ------------------------------


def test_deleting_a_job_ends_its_queued_runs_and_flags_its_running_ones(store: Store) -> None:
    job = store.create_job(JOB, now=1)
    running = new_run(store, job.job_id)
    queued = new_run(store, job.job_id)
    assert (running.state, queued.state) == ("PENDING", "QUEUED")
    other = new_run(store, store.create_job(JOB, now=1).job_id)
    assert store.delete_job(job.job_id, now=50) == [running.run_id, queued.run_id]
    ended = store.get_run(queued.run_id)
    assert (ended.state, ended.result_state, ended.end_time) == ("TERMINATED", "CANCELED", 50)
    assert ended.state_message == "The job was deleted while this run was queued."
    assert store.cancel_requested([running.run_id, other.run_id]) == {running.run_id}
    assert store.get_run(running.run_id).state == "PENDING", "its driver carries the cancel out"


def test_a_queued_run_whose_job_is_gone_ends_when_its_turn_comes(store: Store) -> None:
    job = store.create_job(JOB, now=1)
    new_run(store, job.job_id)
    queued = new_run(store, job.job_id)
    store._write("DELETE FROM jobs WHERE job_id = :job_id", {"job_id": job.job_id})  # as an older Sluice did
    assert store.claim_queued_run(queued.run_id, driver="d2", now=60, max_concurrent_runs=1) is None
    assert store.get_run(queued.run_id).result_state == "CANCELED"


def _write_then_fail(store: Store, run_id: int) -> None:
    with store.savepoint():
        store.update_run(run_id, state_message="undone")
        with store.transaction():  # a nested block failing inside the savepoint
            raise RuntimeError("boom")


def test_a_failed_savepoint_undoes_only_its_own_writes(store: Store) -> None:
    job = store.create_job(JOB, now=1)
    kept, undone = new_run(store, job.job_id), new_run(store, job.job_id)
    with store.transaction():
        store.update_run(kept.run_id, state_message="kept")
        with pytest.raises(RuntimeError, match="boom"):
            _write_then_fail(store, undone.run_id)
        store.fail_run(undone.run_id, "failed alone", now=70)
    assert store.get_run(kept.run_id).state_message == "kept"
    failed = store.get_run(undone.run_id)
    assert (failed.state, failed.result_state, failed.state_message) == (
        "INTERNAL_ERROR",
        "FAILED",
        "failed alone",
    )
    assert store.runs_driven_by_others("host:1:2", [kept.run_id, undone.run_id]) == []
    assert store.runs_driven_by_others("me:9:9", [kept.run_id, undone.run_id]) == [kept.run_id]
