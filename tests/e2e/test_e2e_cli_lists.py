"""``jobs list`` shows each job's trigger and next run; ``runs list`` start times, durations, whole names."""

from __future__ import annotations

import re

from e2e.helpers import Workspace

LONG = "ecommerce_medallion_backfill_for_every_month_of_2019"


def test_jobs_list_shows_trigger_and_next_run_and_runs_list_whole_names(ws: Workspace) -> None:
    job = ws.job(
        [{"task_key": "ok", "spark_python_task": {"python_file": "ok.py"}}],
        file="nightly.yml",
        name=LONG,
        schedule={"quartz_cron_expression": "0 30 2 * * ?", "timezone_id": "UTC", "pause_status": "UNPAUSED"},
    )
    ws.run(job)
    ws.env["COLUMNS"] = "100"  # too narrow for the long name: cells wrap over lines, and are not cut
    jobs = _cells(ws.cli("jobs", "list").stdout)
    assert jobs["trigger"] == "Cron0302**?(UTC)"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d02:30UTC", jobs["nextrun"])
    assert jobs["name"] == LONG
    runs = _cells(ws.cli("runs", "list").stdout)
    assert runs["name"] == LONG
    assert re.fullmatch(r"\d{4}-\d\d-\d\d\d\d:\d\d:\d\d", runs["started(UTC)"])
    assert re.fullmatch(r"\d+\.\ds", runs["duration"])


def _cells(table: str) -> dict[str, str]:
    """The one row of a rich table as {header: text}: wrapped lines joined, spaces dropped."""
    heads: list[str] = []
    cells: list[str] = []
    for line in table.splitlines():
        for mark, parts in (("┃", heads), ("│", cells)):
            if line.startswith(mark):
                values = [v.replace(" ", "") for v in line.strip(mark).split(mark)]
                parts.extend([""] * (len(values) - len(parts)))
                for i, v in enumerate(values):
                    parts[i] += v
    return dict(zip(heads, cells, strict=True))


def test_jobs_list_shows_a_periodic_triggers_next_slot_from_the_schedulers_anchor(ws: Workspace) -> None:
    from datetime import UTC, datetime

    from sluice.engine.clock import now_ms
    from sluice.scheduler import Scheduler
    from sluice.store import Store

    settings = {
        "name": "every_two_hours",
        "tasks": [{"task_key": "ok", "spark_python_task": {"python_file": "/x.py"}}],
        "trigger": {"periodic": {"interval": 2, "unit": "HOURS"}},
    }
    seen = now_ms() - 100 * 60_000  # the scheduler first saw the trigger 100 minutes ago
    with Store.open(None, ws.home) as store:
        store.create_job(settings, now=seen)
        scheduler = Scheduler(store, clock=lambda: seen, scan_inline=True)
        try:
            scheduler.step(seen)
        finally:
            scheduler.close()
    jobs = _cells(ws.cli("jobs", "list").stdout)
    assert jobs["trigger"] == "Every2hours"
    slot = datetime.fromtimestamp((seen + 2 * 3_600_000) / 1000, UTC).strftime("%Y-%m-%d%H:%MUTC")
    assert jobs["nextrun"] == slot
