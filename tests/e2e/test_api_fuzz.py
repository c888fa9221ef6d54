"""Property-based fuzzing of a live ``sluice serve`` (SQLite and PostgreSQL) from its own /openapi.json.

schemathesis generates requests for every operation the OpenAPI document lists, valid and invalid
(wrong types, integers past 64 bits, NUL characters, missing fields ...), and checks every answer: never a
server error, only status codes the document lists, bodies and content types that match it, and invalid
requests refused. A bounded number of examples per operation keeps the suite to about a minute.

Also here, on the same live server: the request body limit (413, then the server still answers).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from e2e.helpers import Background, Workspace, wait_for

#: Examples per operation and database (valid and invalid requests mixed): 21 operations x 2 databases x
#: 50, about a minute on 2 cores. SLUICE_FUZZ_EXAMPLES=1000 fuzzes longer by hand.
EXAMPLES = int(os.environ.get("SLUICE_FUZZ_EXAMPLES", "50"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    token: str
    bg: Background

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def start(ws: Workspace) -> Server:
    token = ws.json("tokens", "create", "--comment", "fuzz", "--output", "json")["token_value"]
    port = free_port()
    bg = ws.start("serve", "--port", str(port), "--grace", "1")
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool | None:
        if bg.proc.poll() is not None:
            raise AssertionError(f"sluice serve exited {bg.proc.returncode}: {bg.stderr.read_text()}")
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200 or None
        except httpx.HTTPError:
            return None

    wait_for(healthy, timeout=30, what="sluice serve to answer /health")
    server = Server(url, token, bg)
    seed(server, ws)
    return server


def seed(server: Server, ws: Workspace) -> None:
    """Job 1 with two tasks and a run of it, so that fuzzed ids 1, 2, 3 ... reach real jobs and runs."""
    script = ws.write("ok.py", "print('ok')\n")
    tasks = [
        {"task_key": "a", "spark_python_task": {"python_file": str(script)}},
        {
            "task_key": "b",
            "depends_on": [{"task_key": "a"}],
            "spark_python_task": {"python_file": str(script)},
        },
    ]
    job = {"name": "seed", "tasks": tasks, "parameters": [{"name": "p", "default": "x"}]}
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as http:
        job_id = http.post("/api/2.2/jobs/create", json=job).json()["job_id"]
        run_id = http.post("/api/2.2/jobs/run-now", json={"job_id": job_id}).json()["run_id"]

        def ended() -> bool | None:
            run = http.get("/api/2.2/jobs/runs/get", params={"run_id": run_id}).json()
            return run["state"]["life_cycle_state"] == "TERMINATED" or None

        wait_for(ended, timeout=60, what="the seed run to end")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A live ``sluice serve`` on a fresh SQLite home, or on a throw-away PostgreSQL schema."""
    ws = Workspace(tmp_path_factory.mktemp(f"fuzz-{request.param}"))
    try:
        if request.param == "sqlite":
            yield start(ws)
            return
        from sluice.store.testing import postgres_schema, require_postgres

        with postgres_schema(require_postgres()) as url:
            ws.env["SLUICE_DATABASE_URL"] = url
            server = start(ws)
            try:
                yield server
            finally:
                ws.close()  # stop the server before its schema is dropped
    finally:
        ws.close()


def fuzz(operation: APIOperation[Any, Any, Any, Any], server: Server) -> None:
    """Valid and invalid requests of one operation; the first failing check raises (shrunk by Hypothesis)."""
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    )

    @given(case=strategy)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case[Any]) -> None:
        # Every check schemathesis has but two. A request valid for the schema may still name a job or run
        # that does not exist, which the Jobs API answers 400 (INVALID_PARAMETER_VALUE) as Databricks does;
        # and query parameters the operation does not know are ignored, as HTTP APIs (Databricks') do,
        # while schemathesis counts them as invalid data that must be refused.
        case.call_and_validate(
            headers=server.headers, excluded_checks=[positive_data_acceptance, negative_data_rejection]
        )

    check()


def test_every_operation_answers_fuzzed_requests_without_server_errors(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"/openapi.json has an invalid operation: {result.err()}"
        operations.append(result.ok())
    assert len(operations) >= 21, [op.label for op in operations]
    failures: dict[str, str] = {}
    for operation in operations:
        try:
            fuzz(operation, server)
        except Exception as exc:  # report every failing operation, not only the first
            failures[operation.label] = f"{type(exc).__name__}: {exc}"
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    # Nor did anything fail behind the API: the orchestrator and the scheduler drove the fuzzed jobs' runs.
    log = server.bg.stderr.read_text()
    assert "Traceback" not in log, log[-5000:]
    assert " ERROR " not in log, log[-5000:]


def test_a_body_over_the_limit_is_413_and_the_server_goes_on(server: Server, tmp_path: Path) -> None:
    big = b'{"name": "' + b"x" * (11 * 1024 * 1024) + b'"}'
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as http:
        r = http.post("/api/2.2/jobs/create", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413, r.text
        body = r.json()
        assert body["error_code"] == "REQUEST_TOO_LARGE"
        assert "10485760 bytes (10 MiB)" in body["message"]
        assert "SLUICE_MAX_REQUEST_BODY_BYTES" in body["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the body is sent chunked
            for i in range(0, len(big), 1 << 20):
                yield big[i : i + (1 << 20)]

        r = http.post("/api/2.2/jobs/create", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413, r.text
        assert r.json()["error_code"] == "REQUEST_TOO_LARGE"
        # The server is healthy: a normal request on a new connection succeeds.
        job = {"name": "after", "tasks": [{"task_key": "a", "spark_python_task": {"python_file": "/a.py"}}]}
        r = http.post("/api/2.2/jobs/create", json=job)
        assert r.status_code == 200, r.text
        assert (
            http.get("/api/2.2/jobs/get", params={"job_id": r.json()["job_id"]}).json()["settings"]["name"]
            == "after"
        )
