"""Repair runs: re-run some tasks of a finished run inside the same run (Jobs API ``runs/repair``).

A repair records what it re-runs and hands the run back to a driver:

- the run takes the job's *current* settings and, if given, new job parameter values;
- every re-run task gets a new task run (BLOCKED, ``repair_id`` set); its old task values are cleared;
- kept tasks keep their results, outputs and task values, which re-run tasks can read;
- the driver then decides the re-run tasks as usual, and the run's result is recomputed from each task's
  latest task run.

Which tasks: ``rerun_tasks``, or every unsuccessful one (``rerun_all_failed_tasks``); plus every downstream
task that did not succeed (an EXCLUDED or UPSTREAM_FAILED task must be decided again once its parent runs
again), and with ``rerun_dependent_tasks`` also the downstream tasks that had succeeded.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from sluice import params
from sluice.engine.plan import JobPlan
from sluice.errors import ConflictError, InvalidRequestError, NotFoundError
from sluice.states import LifeCycleState, RepairType, ResultState
from sluice.store import Store
from sluice.store.records import RepairRecord, RunRecord, TaskRunRecord

#: Latest results that ``rerun_all_failed_tasks`` re-runs (Databricks' "unsuccessful tasks").
UNSUCCESSFUL = frozenset(
    {
        ResultState.FAILED,
        ResultState.TIMEDOUT,
        ResultState.CANCELED,
        ResultState.UPSTREAM_FAILED,
        ResultState.UPSTREAM_CANCELED,
    }
)

MISSING_REPAIR_ID = "The latest repair ID needs to be provided in order to create a new repair"


class TaskRunLike(Protocol):
    """What :func:`latest_task_runs` reads of a task run (stored records and the UI's lighter rows alike)."""

    @property
    def run_id(self) -> int: ...
    @property
    def task_key(self) -> str: ...
    @property
    def parent_task_run_id(self) -> int | None: ...


T = TypeVar("T", bound=TaskRunLike)


def latest_task_runs(task_runs: Iterable[T]) -> dict[str, T]:
    """Each task's latest task run (for-each iterations excluded)."""
    latest: dict[str, T] = {}
    for tr in task_runs:
        if tr.parent_task_run_id is None and (
            tr.task_key not in latest or tr.run_id > latest[tr.task_key].run_id
        ):
            latest[tr.task_key] = tr
    return latest


def _check_repairable(run: RunRecord, repairs: Sequence[RepairRecord], latest_repair_id: int | None) -> None:
    if not LifeCycleState(run.state).is_terminal:
        raise ConflictError(
            f"Run {run.run_id} is still in progress ({run.state}); it can be repaired once it has ended."
        )
    made = [r for r in repairs if r.type == RepairType.REPAIR.value]
    if made and latest_repair_id is None:
        raise ConflictError(f"{MISSING_REPAIR_ID}: run {run.run_id}'s latest repair is {made[-1].repair_id}.")
    if made and latest_repair_id != made[-1].repair_id:
        raise ConflictError(
            f"latest_repair_id {latest_repair_id} is not the latest repair of run {run.run_id}: that is "
            f"{made[-1].repair_id} (someone repaired the run since); read it with `sluice runs get`."
        )
    if not made and latest_repair_id is not None:
        raise InvalidRequestError(f"Run {run.run_id} has not been repaired yet: omit latest_repair_id.")


def _selection(
    plan: JobPlan,
    latest: Mapping[str, TaskRunRecord],
    rerun_tasks: Sequence[str],
    *,
    all_failed: bool,
    dependents: bool,
) -> list[str]:
    if bool(rerun_tasks) == all_failed:
        raise InvalidRequestError(
            "Give either rerun_tasks (--task) or rerun_all_failed_tasks (--all-failed)."
        )
    for key in rerun_tasks:
        if key not in plan.tasks:
            close = difflib.get_close_matches(key, list(plan.tasks), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise InvalidRequestError(f"rerun_tasks: '{key}' is not a task of the job{hint}.")
    if all_failed:
        chosen = {
            k
            for k, tr in latest.items()
            if k in plan.tasks
            and (
                tr.state == LifeCycleState.INTERNAL_ERROR.value
                or (tr.result_state is not None and ResultState(tr.result_state) in UNSUCCESSFUL)
            )
        }
    else:
        chosen = set(rerun_tasks)
    graph = plan.graph(set(latest) | chosen)
    pending = list(chosen)
    while pending:
        for child in graph.downstream.get(pending.pop(), ()):
            result = latest[child].result_state if child in latest else None
            if child not in chosen and (dependents or result != ResultState.SUCCESS.value):
                chosen.add(child)
                pending.append(child)
    return [k for k in graph.order if k in chosen]


def repair_run(  # noqa: PLR0913 - the runs/repair request's fields, all keyword-only
    store: Store,
    run_id: int,
    *,
    now: int,
    rerun_tasks: Sequence[str] = (),
    rerun_all_failed_tasks: bool = False,
    rerun_dependent_tasks: bool = False,
    latest_repair_id: int | None = None,
    job_parameters: Mapping[str, str] | None = None,
    driver: str | None = None,
) -> RepairRecord:
    """Record a repair of ``run_id`` and make the run PENDING again; a driver then runs it."""
    with store.transaction():
        run = store.get_run(run_id)
        repairs = store.list_repairs(run_id)
        _check_repairable(run, repairs, latest_repair_id)
        settings = _current_settings(store, run)
        plan = JobPlan.of(settings)
        task_runs = store.list_task_runs(run_id)
        latest = latest_task_runs(task_runs)
        selected = _selection(
            plan, latest, rerun_tasks, all_failed=rerun_all_failed_tasks, dependents=rerun_dependent_tasks
        )
        if not selected:
            raise InvalidRequestError(f"Run {run_id} has no unsuccessful task to re-run.")
        if not repairs:
            _record_original(store, run, task_runs)
        repair = store.create_repair(run_id, now=now, type=RepairType.REPAIR.value)
        new_ids = []
        for key in selected:
            tr = store.create_task_run(
                job_run_id=run_id,
                task_key=key,
                attempt_number=0,
                state=LifeCycleState.BLOCKED.value,
                now=now,
                repair_id=repair.repair_id,
            )
            store.put_task_values(run_id, key, {})
            new_ids.append(tr.run_id)
        store.update_repair(
            repair.repair_id, state=LifeCycleState.PENDING.value, start_time=now, task_run_ids=new_ids
        )
        only = sorted(set(run.only_tasks) | set(selected)) if run.only_tasks else None
        store.update_run(
            run_id,
            state=LifeCycleState.PENDING.value,
            result_state=None,
            state_message="",
            termination_code=None,
            termination_type=None,
            end_time=0,
            settings=settings,
            job_parameters=_parameters(plan, run, job_parameters),
            repair_count=run.repair_count + 1,
            cancel_requested=False,
            only_tasks=only,
            driver=driver,
            heartbeat_time=now,
        )
        return store.list_repairs(run_id)[-1]


def _current_settings(store: Store, run: RunRecord) -> dict[str, Any]:
    """The job's settings now (a repair uses them), or the run's own if the job is gone."""
    if run.job_id is None:
        return run.settings
    try:
        return store.get_job(run.job_id).settings
    except NotFoundError:
        return run.settings


def _parameters(plan: JobPlan, run: RunRecord, overrides: Mapping[str, str] | None) -> list[dict[str, Any]]:
    """The run's job parameter values, with the repair's overrides (unknown names are an error)."""
    current = {p["name"]: str(p.get("value", p.get("default", ""))) for p in run.job_parameters}
    definitions = [(name, current.get(name, default)) for name, default in plan.parameters]
    resolved = params.resolve_job_parameters(definitions, overrides or {})
    defaults = dict(plan.parameters)
    return [{**p, "default": defaults.get(p["name"], p["default"])} for p in resolved]


def _record_original(store: Store, run: RunRecord, task_runs: Sequence[TaskRunRecord]) -> None:
    """The first repair keeps the original run's facts as the ORIGINAL entry of the repair history."""
    original = store.create_repair(run.run_id, now=run.start_time, type=RepairType.ORIGINAL.value)
    store.update_repair(
        original.repair_id,
        start_time=run.start_time,
        end_time=run.end_time,
        state=run.state,
        result_state=run.result_state,
        task_run_ids=[tr.run_id for tr in task_runs],
    )


def finish_repair(store: Store, run_id: int, *, now: int, state: str, result_state: str | None) -> None:
    """Close the run's open repair entry when the repaired run ends."""
    repairs = store.list_repairs(run_id)
    if repairs and repairs[-1].type == RepairType.REPAIR.value and not repairs[-1].end_time:
        store.update_repair(repairs[-1].repair_id, end_time=now, state=state, result_state=result_state)
