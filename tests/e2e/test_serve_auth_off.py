"""``sluice serve`` with auth off (SLUICE_AUTH=false / --no-auth): local use, loopback only, no login.

A real server process: pages load without a login, the API answers without a token, a page's form acts;
requests a page of another site could send through the browser (another Host, another Origin) are refused,
and a bind address other machines can reach is refused at start with the fix named.
"""

from __future__ import annotations

import re

import httpx

from e2e.helpers import Workspace, wait_for
from e2e.test_api_sdk import free_port

JOB = {
    "name": "local job",
    "tasks": [{"task_key": "main", "spark_python_task": {"python_file": "/nowhere/main.py"}}],
}


def _start(ws: Workspace, *args: str, auth_off: bool = True) -> str:
    port = free_port()
    bg = ws.start("serve", "--port", str(port), "--grace", "5", *args)

    def healthy() -> bool | None:
        if bg.proc.poll() is not None:
            raise AssertionError(f"sluice serve exited {bg.proc.returncode}: {bg.stderr.read_text()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200 or None
        except httpx.HTTPError:
            return None

    wait_for(healthy, timeout=30, what="sluice serve to answer /health")
    assert ("Auth is off" in bg.stdout.read_text()) == auth_off, bg.stdout.read_text()
    return f"http://127.0.0.1:{port}"


def test_pages_and_api_work_without_a_token_on_loopback(ws: Workspace) -> None:
    ws.env["SLUICE_AUTH"] = "false"
    url = _start(ws)
    with httpx.Client(base_url=url, timeout=30) as client:
        created = client.post("/api/2.2/jobs/create", json=JOB)
        assert created.status_code == 200, created.text
        job_id = created.json()["job_id"]
        assert client.get("/api/2.2/jobs/list").json()["jobs"][0]["job_id"] == job_id

        jobs = client.get("/jobs")
        assert jobs.status_code == 200
        assert "local job" in jobs.text
        assert client.get("/login", follow_redirects=False).headers["location"] == "/jobs"
        page = client.get(f"/jobs/{job_id}")
        assert page.status_code == 200
        assert "Log out" not in page.text

        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf, page.text
        ran = client.post(f"/jobs/{job_id}/run-now", data={"csrf": csrf.group(1)}, headers={"Origin": url})
        assert ran.status_code == 303, ran.text
        assert re.fullmatch(rf"/jobs/{job_id}/runs/\d+", ran.headers["location"])

        # DNS rebinding: a page of evil.example whose name resolves to 127.0.0.1.
        rebound = client.get("/api/2.2/jobs/list", headers={"Host": "evil.example:8080"})
        assert rebound.status_code == 403
        assert "SLUICE_AUTH=false" in rebound.json()["message"]
        # A cross-site fetch/form to the API, which needs no token here.
        foreign = client.post(
            "/api/2.2/jobs/run-now", json={"job_id": job_id}, headers={"Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
        assert "https://evil.example" in foreign.json()["message"]
        assert (
            client.post(
                "/api/2.2/jobs/delete", json={"job_id": job_id}, headers={"Origin": "null"}
            ).status_code
            == 403
        )
        assert client.get("/api/2.2/jobs/get", params={"job_id": job_id}).status_code == 200


def test_the_flag_turns_auth_off_and_the_default_keeps_it_on(ws: Workspace) -> None:
    url = _start(ws, "--no-auth")
    assert httpx.get(f"{url}/api/2.2/jobs/list", timeout=30).status_code == 200

    other = _start(ws, auth_off=False)
    assert httpx.get(f"{other}/api/2.2/jobs/list", timeout=30).status_code == 401
    page = httpx.get(f"{other}/jobs", timeout=30)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login")


def test_auth_off_on_an_address_others_can_reach_is_refused(ws: Workspace) -> None:
    done = ws.cli("serve", "--host", "0.0.0.0", "--port", str(free_port()), "--no-auth", timeout=60)
    assert done.returncode != 0
    assert "loopback" in done.stderr, done.stderr
    assert "0.0.0.0" in done.stderr

    ws.env.update(SLUICE_AUTH="false", SLUICE_SERVER_HOST="192.0.2.1")
    done = ws.cli("serve", "--port", str(free_port()), timeout=60)
    assert done.returncode != 0
    assert "192.0.2.1" in done.stderr, done.stderr
    assert "--host 127.0.0.1" in done.stderr
