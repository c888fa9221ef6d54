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
) -> tuple[RunRecord, bool]:
    """Create a run of ``job``: PENDING, QUEUED or SKIPPED as its concurrency allows.

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
    )
