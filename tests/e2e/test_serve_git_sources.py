"""git_source through a live ``sluice serve``: nothing a caller sends reaches git as an option.

A ``git_url`` or revision that begins with ``-`` (``--upload-pack=<command>``) used to be passed to
``git fetch`` as an option, so git ran the caller's shell command inside the server. Now every job-writing
endpoint refuses it with 400 INVALID_PARAMETER_VALUE naming the field, stores nothing, and runs nothing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.helpers import Workspace, wait_for
from e2e.test_api_sdk import start_server


def git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_repo(root: Path) -> str:
    """A repository whose ``step.py`` writes "from git" into the file argv[1]; its head commit."""
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "step.py").write_text("import sys\nopen(sys.argv[1], 'w').write('from git')\n")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "step")
    return git(root, "rev-parse", "HEAD")


@contextmanager
def serve(ws: Workspace, **env: str) -> Iterator[httpx.Client]:
    """Start ``sluice serve`` (with ``env`` added) and yield a client of its Jobs API 2.2."""
    ws.env.update(env)
    token = ws.json("tokens", "create", "--comment", "e2e", "--output", "json")["token_value"]
    server = start_server(ws, token)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{server.url}/api/2.2", headers=headers, timeout=30) as http:
        yield http


def job(git_source: dict[str, str], out: Path, name: str = "git") -> dict[str, Any]:
    task = {
        "task_key": "step",
        "spark_python_task": {"python_file": "step.py", "source": "GIT", "parameters": [str(out)]},
    }
    return {"name": name, "tasks": [task], "git_source": {"git_provider": "gitHub", **git_source}}


def refused(response: httpx.Response, field: str) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert field in body["message"]
    return str(body["message"])


def finished(http: httpx.Client, run_id: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        run: dict[str, Any] = http.get("/jobs/runs/get", params={"run_id": run_id}).json()
        ended = run["state"]["life_cycle_state"] in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED")
        return run if ended else None

    return wait_for(done, timeout=60, what=f"run {run_id} to end", interval=0.2)


def test_a_git_url_or_ref_that_is_an_option_is_refused_and_runs_nothing(ws: Workspace) -> None:
    repo = ws.root / "repo"
    head = make_repo(repo)
    marker = ws.root / "pwned"
    out = ws.root / "ran.txt"
    with serve(ws) as http:
        check_refusals(http, repo, head, marker, out)


def check_refusals(http: httpx.Client, repo: Path, head: str, marker: Path, out: Path) -> None:
    evil_url = f"--upload-pack=touch {marker};#://x"
    evil_ref = f"--upload-pack=touch {marker}"

    # a URL that is an option: with a full sha, the old server passed it to `git fetch` and git ran it
    bad = job({"git_url": evil_url, "git_commit": head}, out)
    message = refused(http.post("/jobs/runs/submit", json={**bad, "run_name": "x"}), "git_source.git_url")
    assert "begins with '-', which git would read as an option" in message
    refused(http.post("/jobs/create", json=bad), "git_source.git_url")
    for field in ("git_branch", "git_tag"):
        bad_ref = job({"git_url": str(repo), field: evil_ref}, out)
        refused(http.post("/jobs/create", json=bad_ref), f"git_source.{field}")
        refused(http.post("/jobs/runs/submit", json=bad_ref), f"git_source.{field}")

    # reset and update of a good job are refused as well, and leave the job as it was
    good = job({"git_url": str(repo), "git_branch": "main"}, out)
    created = http.post("/jobs/create", json=good)
    assert created.status_code == 200, created.text
    job_id = created.json()["job_id"]
    refused(http.post("/jobs/reset", json={"job_id": job_id, "new_settings": bad}), "git_source.git_url")
    update = {"job_id": job_id, "new_settings": {"git_source": bad["git_source"]}}
    refused(http.post("/jobs/update", json=update), "git_source.git_url")
    stored = http.get("/jobs/get", params={"job_id": job_id}).json()["settings"]["git_source"]
    assert stored == {"git_url": str(repo), "git_provider": "gitHub", "git_branch": "main"}
    assert [j["job_id"] for j in http.get("/jobs/list").json()["jobs"]] == [job_id]

    # the good job runs from its local repository (local git sources are allowed by default)
    run_id = http.post("/jobs/run-now", json={"job_id": job_id}).json()["run_id"]
    run = finished(http, run_id)
    assert run["state"]["result_state"] == "SUCCESS", run["state"]
    assert run["git_source"]["git_snapshot"] == {"used_commit": head}
    assert out.read_text() == "from git"
    assert [r["run_id"] for r in http.get("/jobs/runs/list").json()["runs"]] == [run_id]
    assert not marker.exists()


@pytest.mark.parametrize("url_of", [str, lambda p: f"file://{p}"])
def test_a_server_can_refuse_local_git_sources(ws: Workspace, url_of: Any) -> None:
    repo = ws.root / "repo"
    make_repo(repo)
    local = job({"git_url": url_of(repo), "git_branch": "main"}, ws.root / "ran.txt")
    remote = job({"git_url": "https://github.com/example/jobs.git", "git_branch": "main"}, ws.root / "x")
    # a job stored before (`sluice jobs create` on this machine may name a local repository)
    body = ws.write("local.json", json.dumps(local))
    stored = ws.json("jobs", "create", "--json", str(body))["job_id"]
    with serve(ws, SLUICE_ALLOW_LOCAL_GIT_SOURCES="false") as http:
        message = refused(http.post("/jobs/create", json=local), "git_source.git_url")
        assert "this server does not allow local git sources" in message
        assert "SLUICE_ALLOW_LOCAL_GIT_SOURCES=true" in message
        refused(http.post("/jobs/runs/submit", json=local), "git_source.git_url")
        refused(http.post("/jobs/run-now", json={"job_id": stored}), "git_source.git_url")
        assert http.get("/jobs/runs/list").json().get("runs", []) == []
        assert http.post("/jobs/create", json=remote).status_code == 200
