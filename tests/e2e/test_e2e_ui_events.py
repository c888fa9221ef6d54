"""The run page's event stream on a live ``sluice serve``: states arrive as they change, and an open
stream does not hold the server when it is told to stop."""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

import httpx
import pytest

from e2e.helpers import Workspace, wait_for
from e2e.test_api_sdk import Server, start_server


@pytest.fixture
def server(ws: Workspace) -> Server:
    token = ws.json("tokens", "create", "--comment", "events", "--output", "json")["token_value"]
    return start_server(ws, token)


def test_events_follow_a_run_and_end_when_the_server_stops(server: Server) -> None:
    ws = server.ws
    slow = ws.write("slow.py", "import time\nprint('working', flush=True)\ntime.sleep(120)\n")
    headers = {"Authorization": f"Bearer {server.token}"}
    job = {"name": "slow", "tasks": [{"task_key": "work", "spark_python_task": {"python_file": str(slow)}}]}
    with httpx.Client(base_url=f"{server.url}/api/2.2", headers=headers, timeout=30) as api:
        job_id = api.post("/jobs/create", json=job).json()["job_id"]
        run_id = api.post("/jobs/run-now", json={"job_id": job_id}).json()["run_id"]
    snapshots: list[dict[str, Any]] = []
    ended = threading.Event()

    def listen() -> None:
        url = f"{server.url}/jobs/{job_id}/runs/{run_id}/events"
        with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(5, read=120)) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: {"):
                    snapshots.append(json.loads(line[6:]))
        ended.set()

    threading.Thread(target=listen, daemon=True).start()
    wait_for(
        lambda: any(s["tasks"].get("work", {}).get("css") == "running" for s in snapshots) or None,
        timeout=60,
        what="the event stream to report the task running",
    )
    assert snapshots[-1]["run"]["text"] == "Running"
    assert snapshots[-1]["tasks"]["work"]["href"].startswith(f"/jobs/{job_id}/runs/")
    server.bg.proc.send_signal(signal.SIGTERM)
    # The stream would last 60 s and the task 120 s: the server ends the stream and exits after its grace.
    assert server.bg.proc.wait(timeout=45) is not None
    assert ended.wait(10), "the event stream stayed open after the server stopped"
