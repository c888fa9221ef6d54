"""``/api/2.{1,2}/jobs/runs/*``: submit, get, list, cancel, cancel-all, repair, get-output, export, delete.

Handlers record requests in the store and return: a driver (the orchestrator of ``sluice serve``) runs
them. Nothing here waits for a run or runs user code.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request

from sluice.api import pages
from sluice.api.deps import CallerDep, StoreDep, run_created
from sluice.api.errors import bad_request
from sluice.api.fields import CountQuery, Id, IdQuery, OptionalIdQuery
from sluice.api.jobs import LEGACY_PARAMS, _Request, validated
from sluice.engine import submit
from sluice.engine.clock import now_ms
from sluice.engine.output import run_output
from sluice.engine.repair import repair_run
from sluice.engine.view import for_each_run_json, run_json
from sluice.errors import ConflictError, NotFoundError
from sluice.notify.settings import run_page_url
from sluice.states import LifeCycleState, RunType
from sluice.store import Store
from sluice.store.listing import runs_page, task_runs_of
from sluice.store.records import RunRecord

router = APIRouter(tags=["runs"])
log = logging.getLogger("sluice.api")

MAX_RUNS_LIMIT = 25
MAX_RUNS_OFFSET = 10_000
#: Fields of a runs/submit body that are not the run's settings.
_NOT_SETTINGS = ("run_name", "idempotency_token", "access_control_list")
_RUN_ARRAYS = [("tasks",), ("job_parameters",), ("repair_history",), ("job_clusters",), ("iterations",)]


class RunIdBody(_Request):
    run_id: Id


class CancelAllBody(_Request):
    job_id: Id | None = None
    all_queued_runs: bool = False


class RepairBody(_Request):
    run_id: Id
    rerun_tasks: list[str] | None = None
    rerun_all_failed_tasks: bool = False
    rerun_dependent_tasks: bool = False
    latest_repair_id: Id | None = None
    job_parameters: dict[str, str] | None = None
    notebook_params: dict[str, str] | None = None
    python_params: list[str] | None = None
    python_named_params: dict[str, str] | None = None
    jar_params: list[str] | None = None
    spark_submit_params: list[str] | None = None
    sql_params: dict[str, str] | None = None
    dbt_commands: list[str] | None = None
    pipeline_params: dict[str, Any] | None = None


@router.post("/jobs/runs/submit", summary="Submit a one-time run")
def submit_run(
    request: Request, store: StoreDep, caller: CallerDep, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    token = body.get("idempotency_token")
    if token is not None and not (isinstance(token, str) and 0 < len(token) <= 64):
        raise bad_request("idempotency_token must be a string of 1 to 64 characters.")
    data = {k: v for k, v in body.items() if k not in _NOT_SETTINGS}
    data["name"] = str(body.get("run_name") or "Untitled")
    settings = validated(data, request)
    run, _ = submit.submit_once(store, settings, now=now_ms(), idempotency_token=token, creator=caller)
    run_created(request)
    return {"run_id": run.run_id}


@router.get("/jobs/runs/get", summary="Get a run")
def get_run(
    request: Request,
    store: StoreDep,
    run_id: IdQuery,
    include_history: bool = False,
    include_resolved_values: bool = False,
    page_token: str | None = None,
) -> dict[str, Any]:
    try:
        run = store.get_run(run_id)
    except NotFoundError as missing:
        try:
            task_run = store.get_task_run(run_id)
        except NotFoundError:
            raise missing from None
        job_run = store.get_run(task_run.job_run_id)
        doc = for_each_run_json(job_run, task_run, store.list_task_runs(job_run.run_id))
    else:
        repairs = store.list_repairs(run_id) if include_history and run.repair_count else []
        doc = run_json(run, store.list_task_runs(run_id), repairs=repairs, include_history=include_history)
    base = request.app.state.base_url or str(request.base_url).rstrip("/")
    job_id = doc.get("job_id")
    for entry in [doc, *doc.get("tasks", []), *doc.get("iterations", [])]:
        if not include_resolved_values:
            entry.pop("resolved_values", None)
        entry["run_page_url"] = run_page_url(base, job_id, int(entry["run_id"]))
    return pages.page_arrays(doc, _RUN_ARRAYS, page_token)


@router.get("/jobs/runs/list", summary="List runs, newest first")
def list_runs(  # noqa: PLR0913, PLR0917 - the runs/list query parameters, as FastAPI passes them
    store: StoreDep,
    job_id: OptionalIdQuery = None,
    active_only: bool = False,
    completed_only: bool = False,
    offset: CountQuery = None,
    limit: int = 20,
    run_type: RunType | None = None,
    expand_tasks: bool = False,
    start_time_from: CountQuery = None,
    start_time_to: CountQuery = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    if not 0 <= limit <= MAX_RUNS_LIMIT:
        raise bad_request(
            f"limit must be between 0 and {MAX_RUNS_LIMIT} (0 means {MAX_RUNS_LIMIT}), got {limit}."
        )
    if active_only and completed_only:
        raise bad_request("active_only and completed_only cannot both be true.")
    limit = limit or MAX_RUNS_LIMIT
    filters: dict[str, Any] = {
        "job_id": job_id,
        "active_only": active_only,
        "completed_only": completed_only,
        "run_type": run_type.value if run_type else None,
        "start_time_from": start_time_from,
        "start_time_to": start_time_to,
    }
    runs, more, has_prev = _runs_page(store, limit, offset, page_token, filters)
    out: dict[str, Any] = {"has_more": more}
    if runs:
        task_runs = task_runs_of(store, [r.run_id for r in runs]) if expand_tasks else {}
        out["runs"] = [_base_run(r, task_runs.get(r.run_id)) for r in runs]
        if more:
            out["next_page_token"] = pages.encode("n", runs[-1].run_id)
        if has_prev:
            out["prev_page_token"] = pages.encode("p", runs[0].run_id)
    return out


def _runs_page(
    store: Store, limit: int, offset: int | None, page_token: str | None, filters: dict[str, Any]
) -> tuple[list[RunRecord], bool, bool]:
    """A page of runs, whether a next page exists, and whether a previous one does."""
    if offset and not page_token:
        if offset > MAX_RUNS_OFFSET:
            raise bad_request(
                f"The supplied offset {offset} has exceeded the value of {MAX_RUNS_OFFSET} allowed; "
                "use page_token to page further."
            )
        found = store.list_runs(**filters, limit=limit + 1, offset=offset)
        return found[:limit], len(found) > limit, True
    if not page_token:
        runs, more = runs_page(store, limit=limit, **filters)
        return runs, more, False
    kind, key = pages.decode(page_token, "np")
    if kind == "n":
        runs, more = runs_page(store, limit=limit, older_than=key, **filters)
        return runs, more, True
    runs, more = runs_page(store, limit=limit, newer_than=key, **filters)
    return runs, True, more


def _base_run(run: RunRecord, task_runs: list[Any] | None) -> dict[str, Any]:
    doc = run_json(run, task_runs or [])
    if task_runs is None:
        del doc["tasks"]
    elif len(doc["tasks"]) > pages.ARRAY_PAGE:
        doc["tasks"] = doc["tasks"][: pages.ARRAY_PAGE]
        doc["has_more"] = True
    return doc


@router.post("/jobs/runs/cancel", summary="Cancel a run (asynchronous)")
def cancel_run(request: Request, store: StoreDep, body: RunIdBody) -> dict[str, Any]:
    submit.cancel(store, body.run_id, now=now_ms())
    run_created(request)  # an orphaned run needs a driver to apply the cancel
    return {}


@router.post("/jobs/runs/cancel-all", summary="Cancel all runs of a job, or all queued runs")
def cancel_all(request: Request, store: StoreDep, body: CancelAllBody) -> dict[str, Any]:
    if body.job_id is None and not body.all_queued_runs:
        raise bad_request("Give job_id, or all_queued_runs=true to cancel every queued run.")
    submit.cancel_all(store, job_id=body.job_id, all_queued_runs=body.all_queued_runs, now=now_ms())
    run_created(request)
    return {}


@router.post("/jobs/runs/repair", summary="Re-run tasks of a finished run")
def repair(request: Request, store: StoreDep, body: RepairBody) -> dict[str, Any]:
    record = repair_run(
        store,
        body.run_id,
        now=now_ms(),
        rerun_tasks=body.rerun_tasks or [],
        rerun_all_failed_tasks=body.rerun_all_failed_tasks,
        rerun_dependent_tasks=body.rerun_dependent_tasks,
        latest_repair_id=body.latest_repair_id,
        job_parameters=body.job_parameters,
    )
    legacy = [name for name in LEGACY_PARAMS if getattr(body, name) is not None]
    if legacy:  # recorded repairs apply job parameters; legacy maps are not re-applied (docs/guide/server.md)
        log.warning("runs/repair of run %s ignored legacy parameters %s", body.run_id, legacy)
    run_created(request)
    return {"repair_id": record.repair_id}


@router.get("/jobs/runs/get-output", summary="Get a task run's output")
def get_output(store: StoreDep, run_id: IdQuery) -> dict[str, Any]:
    return run_output(store, run_id)


@router.get("/jobs/runs/export", summary="Export a run's notebook result pages")
def export(
    store: StoreDep,
    run_id: IdQuery,
    views_to_export: Annotated[str, Query(pattern="^(CODE|DASHBOARDS|ALL)$")] = "CODE",
) -> dict[str, Any]:
    try:
        attempt_dirs = [store.get_task_run(run_id).attempt_dir]
    except NotFoundError:
        attempt_dirs = [tr.attempt_dir for tr in store.list_task_runs(store.get_run(run_id).run_id)]
    views = []
    if views_to_export in ("CODE", "ALL"):
        from sluice.notebooks.render import ensure_html

        for directory in attempt_dirs:
            if directory:
                ensure_html(directory)  # notebook.html is rendered on first export (ADR 0005)
            for page in sorted(Path(directory).glob("*.html")) if directory else ():
                views.append(
                    {"content": page.read_text(errors="replace"), "name": page.stem, "type": "NOTEBOOK"}
                )
    return {"views": views}


@router.post("/jobs/runs/delete", summary="Delete a finished run")
def delete_run(store: StoreDep, body: RunIdBody) -> dict[str, Any]:
    run = store.get_run(body.run_id)
    if not LifeCycleState(run.state).is_terminal:
        raise ConflictError(
            f"Run {run.run_id} is still active ({run.state}); cancel it first, then delete it."
        )
    store.delete_run(run.run_id)
    return {}
