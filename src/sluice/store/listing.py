"""Pages of jobs and runs for the REST API: keyset pagination (stable while runs are being created).

``jobs/list`` pages through jobs by ascending id, ``runs/list`` through runs newest first (descending id).
A page asks for one row more than it returns, to know whether there is a next page without counting.
Filters use the indexes of ``runs`` (``job_id, run_id``; ``state``) and the primary keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluice.states import LifeCycleState
from sluice.store import Store
from sluice.store.records import JobRecord, RunRecord, TaskRunRecord
from sluice.store.store import _JOB_SELECT, _NOT_TERMINAL, _RUNS, _TASK_RUNS, _TERMINAL, _job


def jobs_page(
    store: Store,
    *,
    limit: int,
    after: int | None = None,
    before: int | None = None,
    name: str | None = None,
    name_contains: str | None = None,
) -> tuple[list[JobRecord], bool]:
    """Up to ``limit`` jobs with id > ``after`` (or the last ``limit`` with id < ``before``), ascending,
    and whether more exist in the direction of travel; ``name`` matches whole names, ``name_contains`` any
    part of them (both ignore case)."""
    conditions: list[str] = []
    params: dict[str, Any] = {"limit": limit + 1}
    if name is not None:
        conditions.append("name_lower = :name_lower")
        params["name_lower"] = name.lower()
    if name_contains:
        escaped = name_contains.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append("name_lower LIKE :name_like ESCAPE '\\'")
        params["name_like"] = f"%{escaped}%"
    if after is not None:
        conditions.append("job_id > :after")
        params["after"] = after
    if before is not None:
        conditions.append("job_id < :before")
        params["before"] = before
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    order = "DESC" if before is not None else "ASC"
    rows = store._all(f"{_JOB_SELECT}{where} ORDER BY job_id {order} LIMIT :limit", params)
    more = len(rows) > limit
    jobs = [_job(r) for r in rows[:limit]]
    if before is not None:
        jobs.reverse()
    return jobs, more


def runs_page(  # noqa: PLR0913 - the runs/list filters, all keyword-only
    store: Store,
    *,
    limit: int,
    older_than: int | None = None,
    newer_than: int | None = None,
    job_id: int | None = None,
    active_only: bool = False,
    completed_only: bool = False,
    run_type: str | None = None,
    start_time_from: int | None = None,
    start_time_to: int | None = None,
) -> tuple[list[RunRecord], bool]:
    """Up to ``limit`` runs newest first: with id < ``older_than`` (the next page) or, with ``newer_than``,
    the ``limit`` runs just above that id (the previous page); and whether more exist that way."""
    wanted: list[tuple[str, bool]] = [
        ("job_id = :job_id", job_id is not None),
        (f"state IN {_NOT_TERMINAL}", active_only),
        (f"state IN {_TERMINAL}", completed_only),
        ("run_type = :run_type", run_type is not None),
        ("start_time >= :start_time_from", start_time_from is not None),
        ("start_time <= :start_time_to", start_time_to is not None),
        ("run_id < :older_than", older_than is not None),
        ("run_id > :newer_than", newer_than is not None),
    ]
    conditions = [sql for sql, on in wanted if on]
    params: dict[str, Any] = {
        "job_id": job_id,
        "run_type": run_type,
        "start_time_from": start_time_from,
        "start_time_to": start_time_to,
        "older_than": older_than,
        "newer_than": newer_than,
        "limit": limit + 1,
    }
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    order = "ASC" if newer_than is not None else "DESC"
    rows = store._all(f"{_RUNS.select}{where} ORDER BY run_id {order} LIMIT :limit", params)
    more = len(rows) > limit
    runs = [_RUNS.decode(r) for r in rows[:limit]]
    if newer_than is not None:
        runs.reverse()
    return runs, more


def cancel_if_queued(store: Store, run_id: int, *, now: int) -> bool:
    """QUEUED -> TERMINATED/CANCELED in one compare-and-set; False when the run was no longer queued."""
    return (
        store._write(
            "UPDATE runs SET state = :terminated, result_state = 'CANCELED', "
            "state_message = 'Run was canceled while queued.', end_time = :now, "
            "termination_code = 'USER_CANCELED', termination_type = 'SUCCESS' "
            "WHERE run_id = :run_id AND state = 'QUEUED'",
            {"terminated": LifeCycleState.TERMINATED.value, "now": now, "run_id": run_id},
        )
        == 1
    )


def queued_run_ids(store: Store, *, job_id: int | None) -> list[int]:
    """Every QUEUED run (of ``job_id`` when given), oldest first."""
    where = "state = 'QUEUED'" + ("" if job_id is None else " AND job_id = :job_id")
    rows = store._all(f"SELECT run_id FROM runs WHERE {where} ORDER BY run_id", {"job_id": job_id})  # noqa: S608 - constant SQL
    return [int(r[0]) for r in rows]


def active_run_ids(store: Store, *, job_id: int | None) -> list[int]:
    """Every run not yet terminal (of ``job_id`` when given), oldest first."""
    where = f"state IN {_NOT_TERMINAL}" + ("" if job_id is None else " AND job_id = :job_id")
    rows = store._all(f"SELECT run_id FROM runs WHERE {where} ORDER BY run_id", {"job_id": job_id})  # noqa: S608 - constant SQL
    return [int(r[0]) for r in rows]


def task_runs_of(store: Store, run_ids: list[int]) -> dict[int, list[TaskRunRecord]]:
    """The task runs of several job runs in one query: ``{job run id: [task runs by id]}``."""
    out: dict[int, list[TaskRunRecord]] = {run_id: [] for run_id in run_ids}
    if not run_ids:
        return out
    rows = store._all(
        f"{_TASK_RUNS.select} WHERE job_run_id {{ids:run_ids}} ORDER BY run_id",
        {"run_ids": store._db.dialect.ids(run_ids)},
    )
    for row in rows:
        tr = _TASK_RUNS.decode(row)
        out[tr.job_run_id].append(tr)
    return out


@dataclass(frozen=True)
class TaskRunState:
    """The few columns of a task run a grid of runs shows (no JSON to decode)."""

    run_id: int
    job_run_id: int
    task_key: str
    state: str
    result_state: str | None
    start_time: int
    end_time: int
    parent_task_run_id: int | None


_STATES_SELECT = (
    "SELECT run_id, job_run_id, task_key, state, result_state, start_time, end_time, parent_task_run_id "
    "FROM task_runs WHERE job_run_id {ids:run_ids} AND parent_task_run_id IS NULL"
)


def task_run_states(store: Store, run_ids: list[int]) -> dict[int, list[TaskRunState]]:
    """The task runs (for-each iterations left out) of several job runs, states and times only:
    ``{job run id: [task runs]}``, in no particular order."""
    out: dict[int, list[TaskRunState]] = {run_id: [] for run_id in run_ids}
    if run_ids:
        for row in store._all(_STATES_SELECT, {"run_ids": store._db.dialect.ids(run_ids)}):
            out[row[1]].append(TaskRunState(*row))
    return out
