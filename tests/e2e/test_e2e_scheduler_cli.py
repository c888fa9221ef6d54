"""``sluice jobs pause | resume | next-runs`` through the real CLI."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from e2e.helpers import Workspace


def create(ws: Workspace, **settings: object) -> int:
    body = {"name": "sched", "tasks": [{"task_key": "a", "spark_python_task": {"python_file": "ok.py"}}]}
    path = ws.write("job.json", json.dumps({**body, **settings}))
    return int(ws.json("jobs", "create", "--json", str(path))["job_id"])


def test_pause_and_resume_flip_the_pause_status(ws: Workspace) -> None:
    job_id = create(ws, schedule={"quartz_cron_expression": "0 0 3 * * ?", "timezone_id": "UTC"})
    assert ws.json("jobs", "pause", str(job_id))["pause_status"] == "PAUSED"
    assert ws.json("jobs", "get", str(job_id))["settings"]["schedule"]["pause_status"] == "PAUSED"
    assert ws.json("jobs", "resume", str(job_id))["pause_status"] == "UNPAUSED"
    assert ws.json("jobs", "get", str(job_id))["settings"]["schedule"]["pause_status"] == "UNPAUSED"
    plain = create(ws)
    done = ws.cli("jobs", "pause", str(plain))
    assert done.returncode == 2
    assert f"Job {plain} has no schedule, trigger or continuous setting" in done.stderr


def test_next_runs_in_the_schedule_zone_with_utc_and_offset(ws: Workspace) -> None:
    job_id = create(
        ws, schedule={"quartz_cron_expression": "0 30 2 * * ?", "timezone_id": "America/New_York"}
    )
    out = ws.json("jobs", "next-runs", str(job_id), "-n", "3", "--output", "json")
    times = out["next_runs"]
    assert len(times) == 3
    zone = ZoneInfo("America/New_York")
    for entry in times:
        local = datetime.fromtimestamp(entry["epoch_ms"] / 1000, zone)
        assert entry["time"].endswith("02:30:00") or local.strftime("%H:%M") == "03:00"
        assert entry["utc_offset"] in ("-05:00", "-04:00")
        assert entry["utc"] == datetime.fromtimestamp(entry["epoch_ms"] / 1000, ZoneInfo("UTC")).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    epochs = [e["epoch_ms"] for e in times]
    assert epochs == sorted(epochs)
    table = ws.cli("jobs", "next-runs", str(job_id))
    assert table.returncode == 0
    assert "02:30:00" in table.stdout


def test_next_runs_of_an_event_trigger_is_refused(ws: Workspace) -> None:
    job_id = create(ws, trigger={"file_arrival": {"url": str(ws.dir / "in")}})
    done = ws.cli("jobs", "next-runs", str(job_id))
    assert done.returncode == 2
    assert "starts runs on events" in done.stderr
