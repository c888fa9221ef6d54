"""The REST API over real HTTP (uvicorn in a thread, httpx): error bodies, auth, pagination, job updates."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_harness import client, serving

from sluice.api.app import create_app
from sluice.engine.clock import now_ms
from sluice.errors import InvalidJobError
from sluice.identity import local_user
from sluice.spec.jobs import JobSettings
from sluice.spec.validate import validate_settings
from sluice.store import Store
from sluice.store.tokens import create_token, digest, revoke_token
from sluice.store.workspace import workspace_id


@dataclass
class Api:
    store: Store
    url: str
    http: httpx.Client
    token: str
    rings: list[int]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """The store's URL: SQLite in memory, or a throw-away PostgreSQL schema."""
    if request.param == "sqlite":
        yield "sqlite:///:memory:"
        return
    from sluice.store.testing import postgres_schema, require_postgres

    with postgres_schema(require_postgres()) as url:
        yield url


@pytest.fixture
def api(tmp_path: Path, database: str) -> Iterator[Api]:
    store = Store.open(database, tmp_path)
    token, _ = create_token(store, comment="tests", now=now_ms(), user_name="tester@example.com")
    rings: list[int] = []
    app = create_app(store, on_run_created=lambda: rings.append(1))
    with serving(app) as url, client(url, token) as http:
        yield Api(store, url, http, token, rings)
    store.close()


def task(key: str, *deps: str) -> dict[str, Any]:
    out: dict[str, Any] = {"task_key": key, "spark_python_task": {"python_file": f"/work/{key}.py"}}
    if deps:
        out["depends_on"] = [{"task_key": d} for d in deps]
    return out


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) == {"error_code", "message"}
    return response.status_code, body["error_code"], body["message"]


def create_job(api: Api, **settings: Any) -> int:
    r = api.http.post("/api/2.2/jobs/create", json={"name": "j", "tasks": [task("a")], **settings})
    assert r.status_code == 200, r.text
    return int(r.json()["job_id"])


# ------------------------------------------------------------------------------------------ auth


def test_health_and_well_known_need_no_token(api: Api) -> None:
    with client(api.url, None) as anonymous:
        assert anonymous.get("/health").json()["status"] == "ok"
        config = anonymous.get("/.well-known/databricks-config").json()
        assert config == {"oidc_endpoint": "", "workspace_id": str(workspace_id(api.store))}
        status, code, message = error(anonymous.get("/api/2.2/jobs/list"))
    assert (status, code) == (401, "UNAUTHENTICATED")
    assert "sluice tokens create" in message


def test_unknown_revoked_and_expired_tokens_are_refused(api: Api) -> None:
    with client(api.url, "dapi" + "0" * 64) as stranger:
        assert error(stranger.get("/api/2.2/jobs/list"))[:2] == (403, "PERMISSION_DENIED")
    old, info = create_token(
        api.store, comment="old", now=now_ms() - 10_000, user_name="tester@example.com", lifetime_seconds=1
    )
    with client(api.url, old) as expired:
        status, _, message = error(expired.get("/api/2.2/jobs/list"))
    assert status == 403
    assert f"token {info.token_id} expired" in message
    assert api.http.get("/api/2.2/jobs/list").status_code == 200
    mine, info = create_token(api.store, comment="mine", now=now_ms(), user_name="tester@example.com")
    with client(api.url, mine) as revoked:
        assert revoked.get("/api/2.2/jobs/list").status_code == 200
        revoke_token(api.store, info.token_id, now=now_ms())
        status, _, message = error(revoked.get("/api/2.2/jobs/list"))
    assert status == 403
    assert "revoked" in message


def test_me_is_the_token_user_and_names_the_workspace(api: Api) -> None:
    r = api.http.get("/api/2.0/preview/scim/v2/Me")
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["userName"] == me["displayName"] == "tester@example.com"
    assert me["emails"] == [{"value": "tester@example.com", "type": "work", "primary": True}]
    assert me["active"] is True
    assert me["id"].isdigit()
    assert len(me["id"]) == 16
    assert r.headers["X-Databricks-Org-Id"] == str(workspace_id(api.store))
    other, _ = create_token(api.store, comment="ops", now=now_ms(), user_name="ops")
    with client(api.url, other) as ops:
        them = ops.get("/api/2.0/preview/scim/v2/Me").json()
    assert (them["userName"], them["emails"]) == ("ops", [])
    assert them["id"] != me["id"]
    with client(api.url, None) as anonymous:
        assert error(anonymous.get("/api/2.0/preview/scim/v2/Me"))[:2] == (401, "UNAUTHENTICATED")


def test_a_token_from_before_users_acts_as_the_local_user(api: Api) -> None:
    value = "dapi" + "1" * 64
    api.store._write(
        "INSERT INTO api_tokens (token_id, token_hash, comment, creation_time, expiry_time, revoked_time) "
        "VALUES ('legacy', :h, 'from 0006', 1, -1, 0)",
        {"h": digest(value)},
    )
    with client(api.url, value) as legacy:
        assert legacy.get("/api/2.0/preview/scim/v2/Me").json()["userName"] == local_user()


def test_jobs_and_tokens_created_through_the_api_belong_to_the_caller(api: Api) -> None:
    job_id = create_job(api, name="owned")
    job = api.http.get("/api/2.2/jobs/get", params={"job_id": job_id}).json()
    assert job["creator_user_name"] == job["run_as_user_name"] == "tester@example.com"
    run_id = api.http.post("/api/2.2/jobs/run-now", json={"job_id": job_id}).json()["run_id"]
    submitted = api.http.post("/api/2.2/jobs/runs/submit", json={"tasks": [task("s")]}).json()["run_id"]
    for rid in (run_id, submitted):
        run = api.http.get("/api/2.2/jobs/runs/get", params={"run_id": rid}).json()
        assert run["creator_user_name"] == "tester@example.com"
    robot = create_job(api, name="robot", run_as={"service_principal_name": "6f0d1e0c-app"})
    shown = api.http.get("/api/2.2/jobs/get", params={"job_id": robot}).json()
    assert (shown["creator_user_name"], shown["run_as_user_name"]) == ("tester@example.com", "6f0d1e0c-app")
    assert "run_as" not in shown["settings"]  # write-only, as on Databricks
    created = api.http.post("/api/2.0/token/create", json={"comment": "child"}).json()
    with client(api.url, created["token_value"]) as child:
        assert child.get("/api/2.0/preview/scim/v2/Me").json()["userName"] == "tester@example.com"


def test_token_api_creates_lists_and_revokes(api: Api) -> None:
    created = api.http.post("/api/2.0/token/create", json={"comment": "ci", "lifetime_seconds": 60}).json()
    assert created["token_value"].startswith("dapi")
    info = created["token_info"]
    assert info["expiry_time"] - info["creation_time"] == 60_000
    listed = api.http.get("/api/2.0/token/list").json()["token_infos"]
    assert info in listed
    assert all("token_value" not in t for t in listed)
    with client(api.url, created["token_value"]) as ci:
        assert ci.get("/api/2.2/jobs/list").status_code == 200
        assert api.http.post("/api/2.0/token/delete", json={"token_id": info["token_id"]}).json() == {}
        assert ci.get("/api/2.2/jobs/list").status_code == 403
    gone = api.http.post("/api/2.0/token/delete", json={"token_id": info["token_id"]})
    assert error(gone)[:2] == (404, "RESOURCE_DOES_NOT_EXIST")


# ------------------------------------------------------------------------------------------ error bodies


def test_unknown_job_and_run_are_400_invalid_parameter_value(api: Api) -> None:
    assert error(api.http.get("/api/2.2/jobs/get", params={"job_id": 123})) == (
        400,
        "INVALID_PARAMETER_VALUE",
        "Job 123 does not exist.",
    )
    assert error(api.http.get("/api/2.2/jobs/runs/get", params={"run_id": 77})) == (
        400,
        "INVALID_PARAMETER_VALUE",
        "Run 77 does not exist.",
    )
    assert error(api.http.post("/api/2.2/jobs/run-now", json={"job_id": 5}))[2] == "Job 5 does not exist."
    assert error(api.http.post("/api/2.2/jobs/delete", json={"job_id": 5}))[2] == "Job 5 does not exist."


def test_invalid_settings_give_the_validation_messages(api: Api) -> None:
    settings = {"name": "j", "tasks": [task("silver", "bronz"), task("bronze")]}
    status, code, message = error(api.http.post("/api/2.2/jobs/create", json=settings))
    expected = validate_settings(JobSettings.from_api(settings))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert expected
    assert message == "Invalid job settings: " + "; ".join(str(p) for p in expected)
    assert "did you mean 'bronze'" in message
    with pytest.raises(InvalidJobError) as model_error:
        JobSettings.from_api({"name": "j", "tasks": [{"task_key": "a"}]})
    bad = error(api.http.post("/api/2.2/jobs/create", json={"name": "j", "tasks": [{"task_key": "a"}]}))
    assert bad[2] == "Invalid job settings: " + "; ".join(str(p) for p in model_error.value.problems)
    assert api.http.get("/api/2.2/jobs/list").json() == {"has_more": False}, "nothing was written"


def test_request_shape_errors_name_the_field(api: Api) -> None:
    status, code, message = error(api.http.get("/api/2.2/jobs/runs/get", params={"run_id": "x"}))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert message.startswith("Invalid request: run_id:")
    assert "run_id" in error(api.http.post("/api/2.2/jobs/runs/cancel", json={}))[2]
    assert error(api.http.get("/api/2.2/jobs/nothing"))[:2] == (404, "ENDPOINT_NOT_FOUND")


def test_get_output_of_a_job_run_and_deleting_an_active_run_are_refused(api: Api) -> None:
    job_id = create_job(api)
    run_id = api.http.post("/api/2.2/jobs/run-now", json={"job_id": job_id}).json()["run_id"]
    assert api.rings, "run-now rang the orchestrator's bell"
    status, code, message = error(api.http.get("/api/2.2/jobs/runs/get-output", params={"run_id": run_id}))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert message.startswith("Retrieving the output of runs with multiple tasks is not supported.")
    status, code, message = error(api.http.post("/api/2.2/jobs/runs/delete", json={"run_id": run_id}))
    assert (status, code) == (400, "INVALID_STATE")
    assert "cancel it first" in message
    assert api.http.post("/api/2.2/jobs/runs/cancel", json={"run_id": run_id}).json() == {}
    assert api.store.get_run(run_id).cancel_requested


def test_repair_of_an_active_run_is_invalid_state(api: Api) -> None:
    job_id = create_job(api)
    run_id = api.http.post("/api/2.2/jobs/run-now", json={"job_id": job_id}).json()["run_id"]
    r = api.http.post("/api/2.2/jobs/runs/repair", json={"run_id": run_id, "rerun_all_failed_tasks": True})
    assert error(r)[:2] == (400, "INVALID_STATE")


# ------------------------------------------------------------------------------------------ jobs


def test_update_merges_tasks_by_key_and_reset_replaces(api: Api) -> None:
    job_id = create_job(api, tasks=[task("a"), task("b", "a")], tags={"team": "x"}, max_concurrent_runs=3)
    changed_b = {**task("b", "a"), "timeout_seconds": 60}
    r = api.http.post(
        "/api/2.2/jobs/update",
        json={
            "job_id": job_id,
            "new_settings": {"tasks": [changed_b, task("c", "b")], "tags": {"team": "y"}},
            "fields_to_remove": ["max_concurrent_runs"],
        },
    )
    assert r.json() == {}, r.text
    settings = api.http.get("/api/2.2/jobs/get", params={"job_id": job_id}).json()["settings"]
    assert [t["task_key"] for t in settings["tasks"]] == ["a", "b", "c"]
    assert settings["tasks"][1]["timeout_seconds"] == 60
    assert settings["tags"] == {"team": "y"}
    assert "max_concurrent_runs" not in settings
    api.http.post("/api/2.2/jobs/update", json={"job_id": job_id, "fields_to_remove": ["tasks/c"]})
    settings = api.http.get("/api/2.2/jobs/get", params={"job_id": job_id}).json()["settings"]
    assert [t["task_key"] for t in settings["tasks"]] == ["a", "b"]
    bad = api.http.post("/api/2.2/jobs/update", json={"job_id": job_id, "fields_to_remove": ["tasks/a"]})
    assert "depends_on 'a' is not a task key" in error(bad)[2], "a merge that breaks the job is refused"
    api.http.post(
        "/api/2.2/jobs/reset", json={"job_id": job_id, "new_settings": {"name": "r", "tasks": [task("z")]}}
    )
    settings = api.http.get("/api/2.2/jobs/get", params={"job_id": job_id}).json()["settings"]
    assert settings == {"name": "r", "tasks": [task("z")]}


def test_jobs_get_pages_large_task_arrays(api: Api) -> None:
    job_id = create_job(api, tasks=[task(f"t{i:03}") for i in range(150)])
    first = api.http.get("/api/2.2/jobs/get", params={"job_id": job_id}).json()
    assert len(first["settings"]["tasks"]) == 100
    assert first["has_more"] is True
    second = api.http.get(
        "/api/2.2/jobs/get", params={"job_id": job_id, "page_token": first["next_page_token"]}
    ).json()
    keys = [t["task_key"] for t in first["settings"]["tasks"] + second["settings"]["tasks"]]
    assert keys == [f"t{i:03}" for i in range(150)]
    assert "next_page_token" not in second


def test_jobs_list_pages_by_token_and_filters_by_name(api: Api) -> None:
    ids = [create_job(api, name=f"job{i}") for i in range(7)]
    seen: list[int] = []
    token = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"page_token": token} if token else {})}
        page = api.http.get("/api/2.2/jobs/list", params=params).json()
        seen += [j["job_id"] for j in page.get("jobs", [])]
        assert all("tasks" not in j["settings"] for j in page["jobs"]), "tasks only with expand_tasks"
        pages += 1
        token = page.get("next_page_token")
        if not token:
            break
    assert (seen, pages) == (ids, 3)
    back = api.http.get(
        "/api/2.2/jobs/list", params={"limit": 3, "page_token": page["prev_page_token"]}
    ).json()
    assert [j["job_id"] for j in back["jobs"]] == ids[3:6]
    named = api.http.get("/api/2.2/jobs/list", params={"name": "JOB4", "expand_tasks": True}).json()
    assert [j["job_id"] for j in named["jobs"]] == [ids[4]]
    assert named["jobs"][0]["settings"]["tasks"] == [task("a")]
    assert error(api.http.get("/api/2.2/jobs/list", params={"limit": 101}))[:2] == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert (
        "exceeded the value of 1000" in error(api.http.get("/api/2.2/jobs/list", params={"offset": 1001}))[2]
    )


# ------------------------------------------------------------------------------------------ runs


def make_runs(store: Store, job_id: int, n: int) -> list[int]:
    settings = store.get_job(job_id).settings
    return [
        store.create_run(
            job_id=job_id,
            settings=settings,
            run_name="j",
            run_type="JOB_RUN",
            trigger="ONE_TIME",
            job_parameters=[],
            overriding_parameters={},
            now=now_ms(),
            queue_enabled=True,
            max_concurrent_runs=1000,
        )[0].run_id
        for _ in range(n)
    ]


def test_runs_list_pages_newest_first_without_gaps_or_repeats(api: Api) -> None:
    job_id = create_job(api, max_concurrent_runs=1000)
    ids = make_runs(api.store, job_id, 45)
    seen: list[int] = []
    token = None
    first_page: dict[str, Any] = {}
    while True:
        params: dict[str, Any] = {"job_id": job_id, "limit": 20, **({"page_token": token} if token else {})}
        page = api.http.get("/api/2.2/jobs/runs/list", params=params).json()
        first_page = first_page or page
        if token is None:
            make_runs(api.store, job_id, 3)  # runs created while paging neither repeat nor shift the pages
        seen += [r["run_id"] for r in page["runs"]]
        assert all("tasks" not in r for r in page["runs"])
        token = page.get("next_page_token")
        if not token:
            assert page["has_more"] is False
            break
        assert page["has_more"] is True
    assert seen == sorted(ids, reverse=True)
    assert "prev_page_token" not in first_page
    all_runs = api.http.get("/api/2.2/jobs/runs/list", params={"limit": 0}).json()["runs"]
    assert len(all_runs) == 25, "limit 0 means the maximum, 25"
    assert "above 25" not in error(api.http.get("/api/2.2/jobs/runs/list", params={"limit": 26}))[2]
    both = api.http.get("/api/2.2/jobs/runs/list", params={"active_only": True, "completed_only": True})
    assert error(both)[2] == "active_only and completed_only cannot both be true."


def test_runs_list_prev_page_and_filters(api: Api) -> None:
    job_id = create_job(api, max_concurrent_runs=1000)
    other = create_job(api, max_concurrent_runs=1000)
    ids = make_runs(api.store, job_id, 10)
    make_runs(api.store, other, 2)
    page1 = api.http.get("/api/2.2/jobs/runs/list", params={"job_id": job_id, "limit": 4}).json()
    page2 = api.http.get(
        "/api/2.2/jobs/runs/list",
        params={"job_id": job_id, "limit": 4, "page_token": page1["next_page_token"]},
    ).json()
    back = api.http.get(
        "/api/2.2/jobs/runs/list",
        params={"job_id": job_id, "limit": 4, "page_token": page2["prev_page_token"]},
    ).json()
    assert [r["run_id"] for r in back["runs"]] == [r["run_id"] for r in page1["runs"]] == ids[::-1][:4]
    api.http.post("/api/2.2/jobs/runs/cancel-all", json={"job_id": other})
    active = api.http.get("/api/2.2/jobs/runs/list", params={"active_only": True, "limit": 25}).json()["runs"]
    assert len(active) == 12, "cancel is asynchronous: the runs stay active until a driver ends them"
    flagged = {r["run_id"] for r in active if api.store.get_run(r["run_id"]).cancel_requested}
    assert flagged == {11, 12}, "only the other job's runs were asked to cancel"
    completed = api.http.get("/api/2.2/jobs/runs/list", params={"completed_only": True}).json()
    assert completed == {"has_more": False}
    expanded = api.http.get("/api/2.2/jobs/runs/list", params={"job_id": job_id, "expand_tasks": True}).json()
    assert all(r["tasks"] == [] for r in expanded["runs"])


def test_submit_creates_a_one_time_run_and_the_21_paths_answer(api: Api) -> None:
    r = api.http.post("/api/2.1/jobs/runs/submit", json={"run_name": "once", "tasks": [task("a")]})
    run_id = r.json()["run_id"]
    run = api.http.get("/api/2.1/jobs/runs/get", params={"run_id": run_id}).json()
    assert (run["run_type"], run["run_name"], "job_id" in run) == ("SUBMIT_RUN", "once", False)
    again = api.http.post(
        "/api/2.2/jobs/runs/submit", json={"run_name": "o", "tasks": [task("a")], "idempotency_token": "k1"}
    ).json()
    same = api.http.post(
        "/api/2.2/jobs/runs/submit", json={"run_name": "o", "tasks": [task("a")], "idempotency_token": "k1"}
    ).json()
    assert again == same


def test_openapi_documents_the_jobs_api(api: Api) -> None:
    spec = api.http.get("/openapi.json").json()
    for path in ("/api/2.2/jobs/create", "/api/2.2/jobs/runs/list", "/api/2.2/jobs/runs/repair"):
        assert path in spec["paths"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
