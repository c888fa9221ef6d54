"""``/api/2.{1,2}/jobs/*`` for jobs: create, get, list, update, reset, delete, run-now."""

from __future__ import annotations

import copy
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from sluice.api import pages
from sluice.api.deps import CallerDep, StoreDep, run_created
from sluice.api.errors import bad_request
from sluice.api.fields import CountQuery, Id, IdQuery
from sluice.engine.clock import now_ms
from sluice.engine.submit import run_now
from sluice.errors import InvalidJobError
from sluice.store.listing import jobs_page
from sluice.store.records import JobRecord

router = APIRouter(tags=["jobs"])

#: Arrays that ``jobs/update`` merges by key instead of replacing.
MERGED_ARRAYS = {"tasks": "task_key", "job_clusters": "job_cluster_key", "environments": "environment_key"}
#: Fields of a jobs/create body that are not settings.
_NOT_SETTINGS = ("job_id", "access_control_list")
#: Legacy parameter maps of run-now, kept as the run's ``overriding_parameters``.
LEGACY_PARAMS = (
    "notebook_params",
    "python_params",
    "python_named_params",
    "jar_params",
    "spark_submit_params",
    "sql_params",
    "dbt_commands",
    "pipeline_params",
)
MAX_JOBS_OFFSET = 1000


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class JobIdBody(_Request):
    job_id: Id


class UpdateBody(_Request):
    job_id: Id
    new_settings: dict[str, Any] | None = None
    fields_to_remove: list[str] | None = None


class ResetBody(_Request):
    job_id: Id
    new_settings: dict[str, Any]


class RunNowBody(_Request):
    job_id: Id
    job_parameters: dict[str, str] | None = None
    idempotency_token: str | None = Field(default=None, min_length=1, max_length=64)
    only: list[str] | None = None
    notebook_params: dict[str, str] | None = None
    python_params: list[str] | None = None
    python_named_params: dict[str, str] | None = None
    jar_params: list[str] | None = None
    spark_submit_params: list[str] | None = None
    sql_params: dict[str, str] | None = None
    dbt_commands: list[str] | None = None
    pipeline_params: dict[str, Any] | None = None


def validated(data: dict[str, Any], request: Request | None = None) -> dict[str, Any]:
    """JobSettings JSON checked like ``sluice validate`` does; InvalidJobError lists every problem.

    With the ``request``, a local ``git_source.git_url`` is refused unless the server allows local git
    sources (``create_app(allow_local_git_sources=...)``)."""
    from sluice.spec.jobs import JobSettings
    from sluice.spec.validate import validate_settings

    settings = JobSettings.from_api(data)
    local = True if request is None else bool(request.app.state.allow_local_git_sources)
    problems = validate_settings(settings, allow_local_git=local)
    if problems:
        raise InvalidJobError(problems)
    result: dict[str, Any] = settings.to_api()
    return result


def _check_git_source(settings: dict[str, Any], request: Request) -> None:
    """A stored job's git_source as this server allows it now (it may predate the check or the setting)."""
    from sluice.errors import Problem
    from sluice.gitsource import git_source_problems

    git = settings.get("git_source")
    if not isinstance(git, dict):
        return
    local = bool(request.app.state.allow_local_git_sources)
    problems = [Problem(m, field=f"git_source.{f}") for f, m in git_source_problems(git, allow_local=local)]
    if problems:
        raise InvalidJobError(problems)


def document_settings(doc: dict[str, Any]) -> None:
    """Describe the JobSettings bodies (jobs/create, runs/submit, jobs/reset's ``new_settings``) in the
    OpenAPI document ``doc`` with the models that validate them, instead of 'any object'."""
    from sluice.spec.jobs import JobSettings

    JobSettings.model_rebuild()
    settings = JobSettings.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(settings.pop("$defs", {}))
    schemas["JobSettings"] = settings
    submit = copy.deepcopy(settings)
    submit["title"] = "SubmitRun"
    submit["description"] = "A one-time run: job settings, with run_name instead of name."
    props = submit["properties"]
    props.pop("name", None)
    props["run_name"] = {"type": "string", "title": "Run Name"}
    props["idempotency_token"] = {"type": "string", "minLength": 1, "maxLength": 64}
    schemas["SubmitRun"] = submit

    def body(path: str, schema: dict[str, Any]) -> None:
        for version in ("2.2", "2.1"):
            operation = doc.get("paths", {}).get(f"/api/{version}/{path}", {}).get("post")
            if operation is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": schema}},
                }

    body("jobs/create", {"$ref": "#/components/schemas/JobSettings"})
    body("jobs/runs/submit", {"$ref": "#/components/schemas/SubmitRun"})
    reset = schemas.get("ResetBody", {}).get("properties", {})
    if "new_settings" in reset:
        reset["new_settings"] = {"$ref": "#/components/schemas/JobSettings"}


def job_json(job: JobRecord, *, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Job as jobs/get and jobs/list show it: ``run_as`` is write-only, read back as ``run_as_user_name``
    (the job's creator when it names nobody)."""
    stored = job.settings if settings is None else settings
    run_as = stored.get("run_as") or {}
    identity = run_as.get("user_name") or run_as.get("service_principal_name") or run_as.get("group_name")
    return {
        "job_id": job.job_id,
        "creator_user_name": job.creator_user_name,
        "run_as_user_name": identity or job.creator_user_name,
        "created_time": job.created_time,
        "settings": {k: v for k, v in stored.items() if k != "run_as"},
    }


@router.post("/jobs/create", summary="Create a job")
def create(
    request: Request, store: StoreDep, caller: CallerDep, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    settings = validated({k: v for k, v in body.items() if k not in _NOT_SETTINGS}, request)
    return {"job_id": store.create_job(settings, now=now_ms(), creator=caller).job_id}


@router.get("/jobs/get", summary="Get a job")
def get(store: StoreDep, job_id: IdQuery, page_token: str | None = None) -> dict[str, Any]:
    job = store.get_job(job_id)
    doc = job_json(job, settings=copy.deepcopy(job.settings))
    paths = [("settings", a) for a in ("tasks", "job_clusters", "environments", "parameters")]
    return pages.page_arrays(doc, paths, page_token)


@router.get("/jobs/list", summary="List jobs")
def list_jobs(
    store: StoreDep,
    limit: Annotated[int, Query()] = 20,
    offset: CountQuery = None,
    page_token: str | None = None,
    name: str | None = None,
    expand_tasks: bool = False,
) -> dict[str, Any]:
    if not 1 <= limit <= 100:
        raise bad_request(f"limit must be between 1 and 100, got {limit}.")
    after = before = None
    if page_token:
        kind, key = pages.decode(page_token, "np")
        after, before = (key, None) if kind == "n" else (None, key)
    if offset and not page_token:
        if offset > MAX_JOBS_OFFSET:
            raise bad_request(
                f"The supplied offset {offset} has exceeded the value of {MAX_JOBS_OFFSET} allowed; "
                "use page_token to page further."
            )
        found = store.list_jobs(name=name, limit=limit + 1, offset=offset)
        jobs, more, has_prev = found[:limit], len(found) > limit, True
    else:
        jobs, more = jobs_page(store, limit=limit, after=after, before=before, name=name)
        # Going back from ``before``: more rows that way are previous pages; ``before`` itself is next.
        more, has_prev = (True, more) if before is not None else (more, after is not None)
    out: dict[str, Any] = {"has_more": more}
    if jobs:
        out["jobs"] = [_base_job(j, expand_tasks) for j in jobs]
        if more:
            out["next_page_token"] = pages.encode("n", jobs[-1].job_id)
        if has_prev:
            out["prev_page_token"] = pages.encode("p", jobs[0].job_id)
    return out


def _base_job(job: JobRecord, expand_tasks: bool) -> dict[str, Any]:
    settings = dict(job.settings)
    more = False
    for name in ("tasks", "job_clusters"):
        if name not in settings:
            continue
        if not expand_tasks:
            del settings[name]
        elif len(settings[name]) > pages.ARRAY_PAGE:
            settings[name] = settings[name][: pages.ARRAY_PAGE]
            more = True
    out = job_json(job, settings=settings)
    if more:
        out["has_more"] = True
    return out


def merge_settings(current: dict[str, Any], new: dict[str, Any], remove: list[str]) -> dict[str, Any]:
    """``jobs/update``: top-level fields replace, tasks/job_clusters/environments merge by key, then
    ``fields_to_remove`` drops top-level fields or single entries (``tasks/<task_key>``)."""
    out = copy.deepcopy(current)
    for name, value in new.items():
        key = MERGED_ARRAYS.get(name)
        if key is None or value is None:
            out[name] = copy.deepcopy(value)
            continue
        _check_keyed(name, key, value)
        merged = list(out.get(name) or [])
        index = {e.get(key): i for i, e in enumerate(merged) if isinstance(e, dict)}
        for entry in value:
            at = index.get(entry.get(key)) if isinstance(entry, dict) else None
            if at is None:
                merged.append(copy.deepcopy(entry))
            else:
                merged[at] = copy.deepcopy(entry)
        out[name] = merged
    for field in remove:
        array, sep, entry_key = field.partition("/")
        if sep and array in MERGED_ARRAYS:
            entries = out.get(array) or []
            kept = [e for e in entries if not isinstance(e, dict) or e.get(MERGED_ARRAYS[array]) != entry_key]
            if len(kept) == len(entries):
                raise bad_request(f"fields_to_remove: '{field}' names no entry of {array} with that key.")
            out[array] = kept
        elif sep:
            raise bad_request(
                f"fields_to_remove: '{field}' is not removable; remove top-level fields or entries of "
                f"{', '.join(MERGED_ARRAYS)} ('tasks/<task_key>')."
            )
        else:
            out.pop(field, None)
    return out


def _check_keyed(name: str, key: str, value: object) -> None:
    """400 unless ``new_settings.<name>`` is an array of objects, each with a string ``key``: the entries
    ``jobs/update`` merges by that key."""
    if not isinstance(value, list):
        raise bad_request(f"new_settings.{name} must be an array of objects, got {type(value).__name__}.")
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise bad_request(f"new_settings.{name}[{i}] must be an object, got {type(entry).__name__}.")
        if not isinstance(entry.get(key), str):
            got = "nothing" if key not in entry else type(entry[key]).__name__
            raise bad_request(
                f"new_settings.{name}[{i}].{key} must be a string (the key jobs/update merges on), got {got}."
            )


@router.post("/jobs/update", summary="Update some of a job's settings")
def update(request: Request, store: StoreDep, body: UpdateBody) -> dict[str, Any]:
    job = store.get_job(body.job_id)
    merged = merge_settings(job.settings, body.new_settings or {}, body.fields_to_remove or [])
    settings = validated(merged, request)
    store.update_job(job.job_id, settings, now=now_ms())
    return {}


@router.post("/jobs/reset", summary="Replace all of a job's settings")
def reset(request: Request, store: StoreDep, body: ResetBody) -> dict[str, Any]:
    store.get_job(body.job_id)
    settings = validated({k: v for k, v in body.new_settings.items() if k not in _NOT_SETTINGS}, request)
    store.update_job(body.job_id, settings, now=now_ms())
    return {}


@router.post("/jobs/delete", summary="Delete a job; its active runs are canceled (its runs stay readable)")
def delete(request: Request, store: StoreDep, body: JobIdBody) -> dict[str, Any]:
    store.delete_job(body.job_id, now=now_ms())
    run_created(request)  # a run nobody drives needs a driver to apply the cancel
    return {}


@router.post("/jobs/run-now", summary="Start a run of a job")
def run_now_route(request: Request, store: StoreDep, caller: CallerDep, body: RunNowBody) -> dict[str, Any]:
    job = store.get_job(body.job_id)
    _check_git_source(job.settings, request)
    overriding = {name: getattr(body, name) for name in LEGACY_PARAMS if getattr(body, name) is not None}
    run, _ = run_now(
        store,
        job,
        now=now_ms(),
        job_parameters=body.job_parameters,
        overriding=overriding,
        only=body.only or None,
        idempotency_token=body.idempotency_token,
        creator=caller,
    )
    run_created(request)
    return {"run_id": run.run_id, "number_in_job": run.run_id}
