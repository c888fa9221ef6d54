"""Bad input is a 4xx with Databricks' error body, never a 500; a 500 that remains says nothing but an id.

Over real HTTP (uvicorn in a thread, httpx), on SQLite and on PostgreSQL: each database refuses values
(integers past 64 bits, NUL characters, negative offsets) with errors of its own, which used to escape as
500s.
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_harness import client, serving

from sluice.api.app import create_app
from sluice.engine.clock import now_ms
from sluice.store import Store
from sluice.store.tokens import create_token

BIG = 2**63  # one past the largest 64-bit integer


@dataclass
class Api:
    store: Store
    url: str
    http: httpx.Client
    token: str


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite:///:memory:"
        return
    from sluice.store.testing import postgres_schema, require_postgres

    with postgres_schema(require_postgres()) as url:
        yield url


def _boom() -> None:
    raise RuntimeError("the secret detail of a bug")


@pytest.fixture
def api(tmp_path: Path, database: str) -> Iterator[Api]:
    store = Store.open(database, tmp_path)
    token, _ = create_token(store, comment="tests", now=now_ms(), user_name="tester@example.com")
    app = create_app(store)
    app.add_api_route("/test/boom", _boom, methods=["GET"])  # a handler with a bug, for the 500 path
    with serving(app) as url, client(url, token) as http:
        yield Api(store, url, http, token)
    store.close()


def task(key: str) -> dict[str, Any]:
    return {"task_key": key, "spark_python_task": {"python_file": f"/work/{key}.py"}}


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    return response.status_code, body["error_code"], body["message"]


def create_job(api: Api, tasks: list[dict[str, Any]] | None = None) -> int:
    r = api.http.post("/api/2.2/jobs/create", json={"name": "j", "tasks": tasks or [task("a")]})
    assert r.status_code == 200, r.text
    return int(r.json()["job_id"])


# Every place a request names an id, a time or an offset: (method, path, field, request).
OUT_OF_RANGE = [
    ("GET", "jobs/get", "job_id", {"job_id": BIG}),
    ("POST", "jobs/update", "job_id", {"job_id": BIG, "new_settings": {}}),
    ("POST", "jobs/reset", "job_id", {"job_id": BIG, "new_settings": {"name": "x"}}),
    ("POST", "jobs/delete", "job_id", {"job_id": BIG}),
    ("POST", "jobs/run-now", "job_id", {"job_id": BIG}),
    ("GET", "jobs/list", "offset", {"offset": BIG}),
    ("GET", "jobs/runs/get", "run_id", {"run_id": BIG}),
    ("GET", "jobs/runs/list", "job_id", {"job_id": BIG}),
    ("GET", "jobs/runs/list", "start_time_from", {"start_time_from": BIG}),
    ("GET", "jobs/runs/list", "start_time_to", {"start_time_to": BIG}),
    ("GET", "jobs/runs/list", "offset", {"offset": BIG}),
    ("POST", "jobs/runs/cancel", "run_id", {"run_id": BIG}),
    ("POST", "jobs/runs/cancel-all", "job_id", {"job_id": BIG}),
    ("POST", "jobs/runs/repair", "run_id", {"run_id": BIG, "rerun_all_failed_tasks": True}),
    ("POST", "jobs/runs/repair", "latest_repair_id", {"run_id": 1, "latest_repair_id": BIG}),
    ("GET", "jobs/runs/get-output", "run_id", {"run_id": BIG}),
    ("GET", "jobs/runs/export", "run_id", {"run_id": BIG}),
    ("POST", "jobs/runs/delete", "run_id", {"run_id": BIG}),
    ("POST", "jobs/create", "timeout_seconds", {"name": "j", "tasks": [task("a")], "timeout_seconds": BIG}),
    (
        "POST",
        "jobs/runs/submit",
        "tasks[0].timeout_seconds",
        {"tasks": [{**task("a"), "timeout_seconds": BIG}]},
    ),
]


@pytest.mark.parametrize(("method", "path", "field", "request_data"), OUT_OF_RANGE)
def test_integers_past_64_bits_are_400_naming_the_field(
    api: Api, method: str, path: str, field: str, request_data: dict[str, Any]
) -> None:
    url = f"/api/2.2/{path}"
    get = method == "GET"
    r = api.http.get(url, params=request_data) if get else api.http.post(url, json=request_data)
    status, code, message = error(r)
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE"), message
    assert field in message
    assert "Internal" not in message


def test_ids_below_one_and_negative_offsets_are_400(api: Api) -> None:
    for params in ({"job_id": 0}, {"job_id": -5}):
        assert error(api.http.get("/api/2.2/jobs/get", params=params))[:2] == (400, "INVALID_PARAMETER_VALUE")
    # PostgreSQL refuses a negative OFFSET with an error of its own.
    for path in ("jobs/list", "jobs/runs/list"):
        status, _, message = error(api.http.get(f"/api/2.2/{path}", params={"offset": -1}))
        assert status == 400
        assert "offset" in message
    token_body = {"comment": "c", "lifetime_seconds": BIG - 1}
    status, _, message = error(api.http.post("/api/2.0/token/create", json=token_body))
    assert status == 400
    assert "lifetime_seconds" in message


def test_page_tokens_past_64_bits_are_400(api: Api) -> None:
    import base64

    token = base64.urlsafe_b64encode(f"n{BIG}".encode()).decode().rstrip("=")
    for path in ("jobs/list", "jobs/runs/list"):
        status, code, message = error(api.http.get(f"/api/2.2/{path}", params={"page_token": token}))
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
        assert "page_token" in message


def test_update_with_an_object_where_a_task_key_belongs_is_400(api: Api) -> None:
    job_id = create_job(api)
    before = api.http.get("/api/2.2/jobs/get", params={"job_id": job_id}).json()["settings"]
    cases = [
        ({"tasks": [{"task_key": {"a": 1}}]}, "new_settings.tasks[0].task_key must be a string"),
        ({"tasks": [["a"]]}, "new_settings.tasks[0] must be an object"),
        ({"tasks": "a"}, "new_settings.tasks must be an array of objects"),
        ({"job_clusters": [{"job_cluster_key": 7}]}, "new_settings.job_clusters[0].job_cluster_key"),
    ]
    for new_settings, expected in cases:
        body = {"job_id": job_id, "new_settings": new_settings}
        status, code, message = error(api.http.post("/api/2.2/jobs/update", json=body))
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
        assert expected in message
    after = api.http.get("/api/2.2/jobs/get", params={"job_id": job_id}).json()["settings"]
    assert after == before, "nothing was written"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"run_id": ', "Malformed JSON request body: Expecting value at line 1 column 12."),
        (b'{"run_id": NaN}', "NaN is not a JSON number"),
        (b'{"run_id": Infinity}', "Infinity is not a JSON number"),
        (b"\xff\xfe{}", "Malformed JSON request body"),
    ],
)
def test_a_body_that_is_not_json_is_malformed_request(api: Api, body: bytes, expected: str) -> None:
    r = api.http.post("/api/2.2/jobs/runs/cancel", content=body, headers={"Content-Type": "application/json"})
    status, code, message = error(r)
    assert (status, code) == (400, "MALFORMED_REQUEST")
    assert expected in message


def test_values_no_field_can_hold_are_400_naming_the_field(api: Api) -> None:
    cases: list[tuple[bytes, str]] = [
        (b'{"name": "a\\u0000b", "tasks": []}', "name contains a NUL character"),
        (b'{"name": "\\ud800", "tasks": []}', "name contains a lone UTF-16 surrogate"),
        (b'{"name": "j", "tags": {"k\\u0000": "v"}}', "tags (a field name) contains a NUL character"),
        (b'{"name": "j", "timeout_seconds": 1e999}', "timeout_seconds: the number is too large"),
        (b'{"name": "j", "x": ' + b"[" * 200 + b"]" * 200 + b"}", "more than 64 deep"),
    ]
    for body, expected in cases:
        r = api.http.post("/api/2.2/jobs/create", content=body, headers={"Content-Type": "application/json"})
        status, code, message = error(r)
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE"), message
        assert expected in message
    status, code, message = error(api.http.get("/api/2.2/jobs/list", params={"name": "a\x00"}))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert "query parameter name contains a NUL character" in message
    assert api.http.get("/api/2.2/jobs/list").json() == {"has_more": False}, "nothing was written"


def test_a_job_over_1000_tasks_is_400_naming_the_limit(api: Api) -> None:
    tasks = [task(f"t{i}") for i in range(1001)]
    status, code, message = error(api.http.post("/api/2.2/jobs/create", json={"name": "j", "tasks": tasks}))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert "the job has 1001 tasks; a job may have at most 1000 tasks" in message
    job_id = create_job(api, tasks[:1000])
    body = {"job_id": job_id, "new_settings": {"tasks": [task("one-more")]}}
    status, _, message = error(api.http.post("/api/2.2/jobs/update", json=body))
    assert status == 400
    assert "at most 1000 tasks" in message
    status, _, message = error(api.http.post("/api/2.2/jobs/runs/submit", json={"tasks": tasks}))
    assert status == 400
    assert "at most 1000 tasks" in message


def test_a_500_carries_only_a_reference_id_the_log_explains_and_keeps_the_connection(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = api.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        with caplog.at_level(logging.ERROR, logger="sluice.api"):
            conn.request("GET", "/test/boom")
            r = conn.getresponse()
            body = r.read()
        sock = conn.sock
        assert r.status == 500
        assert (r.getheader("connection") or "").lower() != "close"
        import json

        answer = json.loads(body)
        assert answer["error_code"] == "INTERNAL_ERROR"
        assert answer["message"].startswith("Internal error; reference id ")
        reference = answer["message"].removeprefix("Internal error; reference id ")
        assert reference.isalnum()
        assert b"secret detail" not in body
        assert b"RuntimeError" not in body
        logged = [rec for rec in caplog.records if reference in rec.getMessage()]
        assert logged, caplog.text
        assert logged[0].exc_info is not None
        assert "the secret detail of a bug" in str(logged[0].exc_info[1])
        # The same connection answers the next request.
        conn.request("GET", "/health")
        again = conn.getresponse()
        assert again.status == 200
        assert again.read()
        assert sock is not None
        assert conn.sock is sock, "the connection was not closed after the 500"
    finally:
        conn.close()


def test_openapi_lists_the_status_codes_the_server_answers(api: Api) -> None:
    spec = api.http.get("/openapi.json").json()
    assert "Error" in spec["components"]["schemas"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert "422" not in codes, (method, path)
            assert {"200", "400", "413", "500"} <= codes, (method, path, codes)
            if path.startswith("/api/"):
                assert {"401", "403"} <= codes, (method, path, codes)
            for code in codes - {"200"}:
                schema = operation["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}
    assert "404" in spec["paths"]["/api/2.0/token/delete"]["post"]["responses"]


def test_openapi_describes_job_settings_bodies_with_their_models(api: Api) -> None:
    spec = api.http.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]

    def body_ref(path: str) -> str:
        content = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        return str(content["schema"]["$ref"])

    assert body_ref("/api/2.2/jobs/create") == "#/components/schemas/JobSettings"
    assert body_ref("/api/2.2/jobs/runs/submit") == "#/components/schemas/SubmitRun"
    assert schemas["ResetBody"]["properties"]["new_settings"] == {"$ref": "#/components/schemas/JobSettings"}
    assert "tasks" in schemas["JobSettings"]["properties"]
    assert "run_name" in schemas["SubmitRun"]["properties"]
    assert "name" not in schemas["SubmitRun"]["properties"]
    assert "Task" in schemas
