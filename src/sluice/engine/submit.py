"""Creating runs: run-now semantics (parameters, ``only``, idempotency, concurrency and queueing)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sluice import dag, params
from sluice.engine.plan import JobPlan
from sluice.states import RunType, TriggerType
from sluice.store import Store
from sluice.store.records import JobRecord, RunRecord


def run_now(  # noqa: PLR0913 - the run-now request's fields, all keyword-only
    store: Store,
    job: JobRecord,
    *,
    now: int,
    job_parameters: Mapping[str, str] | None = None,
    overriding: Mapping[str, Any] | None = None,
    trigger: TriggerType = TriggerType.ONE_TIME,
    only: Sequence[str] | None = None,
    idempotency_token: str | None = None,
    driver: str | None = None,
    trigger_info: dict[str, Any] | None = None,
    parent_run_id: int | None = None,
    creator: str | None = None,
) -> tuple[RunRecord, bool]:
    """Create a run of ``job``: PENDING, QUEUED or SKIPPED as its concurrency allows.

    ``creator`` is who asked for it (the CLI's local user, the API caller); None for runs the system starts
    (schedules, triggers, run-job tasks), which are the job creator's, as on Databricks.

    Returns the run and whether it was created (False: the idempotency token named an existing run).
    Raises InvalidRequestError for an unknown parameter or ``only`` task key.
    """
    plan = JobPlan.of(job.settings)
    resolved = params.resolve_job_parameters(plan.parameters, job_parameters or {})
    only_keys = sorted(dag.select_only(plan.graph(), only)) if only else None
    # Jobs API 2.2: queueing is on unless the job turns it off.
    queue_enabled = plan.queue_enabled if plan.queue_enabled is not None else True
    return store.create_run(
        job_id=job.job_id,
        settings=job.settings,
        run_name=plan.name,
        run_type=RunType.JOB_RUN.value,
        trigger=trigger.value,
        job_parameters=resolved,
        overriding_parameters=dict(overriding or {}),
        now=now,
        queue_enabled=queue_enabled,
        max_concurrent_runs=plan.max_concurrent_runs,
        idempotency_token=idempotency_token,
        only_tasks=only_keys,
        driver=driver,
        trigger_info=trigger_info,
        parent_run_id=parent_run_id,
        creator_user_name=job.creator_user_name if creator is None else creator,
    )


def submit_once(
    store: Store,
    settings: dict[str, Any],
    *,
    now: int,
    idempotency_token: str | None = None,
    driver: str | None = None,
    creator: str = "",
) -> tuple[RunRecord, bool]:
    """Create a one-time run (``runs/submit``): no job, run type SUBMIT_RUN, no concurrency limit.

    ``settings`` are validated JobSettings JSON whose ``name`` is the run name.
    """
    plan = JobPlan.of(settings)
    return store.create_run(
        job_id=None,
        settings=settings,
        run_name=str(settings.get("name") or "Untitled"),
        run_type=RunType.SUBMIT_RUN.value,
        trigger=TriggerType.ONE_TIME.value,
        job_parameters=params.resolve_job_parameters(plan.parameters, {}),
        overriding_parameters={},
        now=now,
        queue_enabled=True,
        max_concurrent_runs=1,
        idempotency_token=idempotency_token,
        driver=driver,
        creator_user_name=creator,
    )


def cancel(store: Store, run_id: int, *, now: int) -> RunRecord:
    """Ask for a run to be canceled (``runs/cancel``); returns at once.

    A QUEUED run ends CANCELED here (compare-and-set, so a driver claiming it meanwhile wins and then sees
    the cancel flag); any other active run is flagged and its driver kills its tasks. A task run id cancels
    its job run. Ended runs are left as they are.
    """
    from sluice.errors import NotFoundError
    from sluice.states import LifeCycleState
    from sluice.store.listing import cancel_if_queued

    try:
        run = store.get_run(run_id)
    except NotFoundError:
        run = store.get_run(store.get_task_run(run_id).job_run_id)
    if LifeCycleState(run.state).is_terminal:
        return run
    store.request_cancel(run.run_id)
    if run.state == LifeCycleState.QUEUED.value:
        cancel_if_queued(store, run.run_id, now=now)
    return store.get_run(run.run_id)


def cancel_all(store: Store, *, job_id: int | None, all_queued_runs: bool, now: int) -> int:
    """``runs/cancel-all``: every active run of ``job_id``, or (``all_queued_runs``) every queued run."""
    from sluice.store.listing import active_run_ids, queued_run_ids

    if job_id is not None:
        store.get_job(job_id)
    ids = queued_run_ids(store, job_id=job_id) if all_queued_runs else active_run_ids(store, job_id=job_id)
    for run_id in ids:
        cancel(store, run_id, now=now)
    return len(ids)
