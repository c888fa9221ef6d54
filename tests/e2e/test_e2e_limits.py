"""Limits of what a task leaves behind: capped logs that keep their tail, and a notebook exit value over
5 MB cut as Databricks cuts it, seen through a live ``sluice serve``'s runs/get-output."""

from __future__ import annotations

import time
from typing import Any

import httpx

from e2e.helpers import Workspace, py_task
from e2e.test_api_sdk import start_server

LIMIT = 65536

NOISY = """
import subprocess, sys
for i in range(20000):
    print(f"line {i:05d} of a task that prints too much")
subprocess.run([sys.executable, "-c", "for i in range(5000): print('child', i)"], check=True)
print("the last line")
print("a warning", file=sys.stderr)
"""


def test_task_logs_keep_their_tail_with_a_note_of_what_was_dropped(ws: Workspace) -> None:
    ws.env["SLUICE_MAX_LOG_BYTES"] = str(LIMIT)
    ws.write("noisy.py", NOISY)
    done = ws.run(ws.job([py_task("noisy", "noisy.py")]))
    assert done.run.results() == {"noisy": "SUCCESS"}, done.stderr
    logs = ws.json("runs", "get-output", str(done.run.task("noisy")["run_id"]))["logs"]
    assert logs.startswith("[sluice: "), logs[:200]
    note, _, rest = logs.partition("\n")
    dropped = int(note.removeprefix("[sluice: ").split(" ", 1)[0])
    assert note.endswith(f"each log of an attempt keeps its last {LIMIT} bytes (SLUICE_MAX_LOG_BYTES)]")
    assert rest.endswith("child 4999\nthe last line\na warning\n"), rest[-200:]
    assert len(rest) <= LIMIT + len("a warning\n")
    printed = sum(len(f"line {i:05d} of a task that prints too much\n") for i in range(20000))
    printed += sum(len(f"child {i}\n") for i in range(5000)) + len("the last line\n")
    assert dropped + len(rest) - len("a warning\n") == printed, "the note counts what was dropped"


NOTEBOOK = """# Databricks notebook source
value = "é" * (3 * 1024 * 1024)  # 6 MiB of UTF-8
dbutils.notebook.exit(value)
"""


def test_a_notebook_exit_value_over_5_mb_is_truncated_in_get_output(ws: Workspace) -> None:
    token = ws.json("tokens", "create", "--comment", "e2e", "--output", "json")["token_value"]
    server = start_server(ws, token)
    notebook = ws.write("big_exit.py", NOTEBOOK)
    job: dict[str, Any] = {
        "name": "big-exit",
        "tasks": [{"task_key": "nb", "notebook_task": {"notebook_path": str(notebook.with_suffix(""))}}],
    }
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        job_id = http.post("/api/2.2/jobs/create", json=job).json()["job_id"]
        run_id = http.post("/api/2.2/jobs/run-now", json={"job_id": job_id}).json()["run_id"]
        deadline = time.monotonic() + 120
        while True:
            run = http.get("/api/2.2/jobs/runs/get", params={"run_id": run_id}).json()
            if run["state"]["life_cycle_state"] in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED"):
                break
            assert time.monotonic() < deadline, run["state"]
            time.sleep(0.2)
        assert run["state"]["result_state"] == "SUCCESS", run
        output = http.get(
            "/api/2.2/jobs/runs/get-output", params={"run_id": run["tasks"][0]["run_id"]}
        ).json()
    result = output["notebook_output"]["result"]
    assert output["notebook_output"]["truncated"] is True
    assert result == "é" * (5 * 1024 * 1024 // 2), "the first 5 MiB of UTF-8, never half a character"
