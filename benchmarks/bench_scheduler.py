"""Scheduler latency on the real clock: slot time -> run created, and (with a LocalRunner) -> task started.

Ten jobs with schedules ``i/10 * * * * ?`` (i = 0..9) give one slot per second across the jobs, each job
10 s apart (the minimum). A loop like the server's orchestrator calls ``Scheduler.tick(now)`` every
``--tick`` seconds on a SQLite store (durable commits).

Phase "created": only the scheduler runs; latency = run.created_time - slot time.
Phase "task start": every new run is handed to a LocalRunner whose driver is stepped in the same loop
(as ``sluice serve`` will); latency = first task attempt's start_time - slot time (the task is a no-op
Python file, its own process).

Prints one JSON line per phase with n, p50, p95 and max in milliseconds. Target: p95 < 100 ms.

usage: python benchmarks/bench_scheduler.py [--seconds 20] [--tick 0.02]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from sluice.engine.local import LocalRunner
from sluice.scheduler import Scheduler
from sluice.store import Store


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def percentiles(values: list[int]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(values), "p50_ms": statistics.median(ordered), "p95_ms": p95, "max_ms": ordered[-1]}


def make_jobs(store: Store, script: Path) -> list[int]:
    ids = []
    for i in range(10):
        settings = {
            "name": f"bench-{i}",
            "max_concurrent_runs": 100,
            "schedule": {"quartz_cron_expression": f"{i}/10 * * * * ?", "timezone_id": "UTC"},
            "tasks": [{"task_key": "a", "spark_python_task": {"python_file": str(script)}}],
        }
        ids.append(store.create_job(settings, now=now_ms()).job_id)
    return ids


def phase(root: Path, seconds: float, tick: float, *, drive: bool) -> dict[str, object]:
    home = root / ("drive" if drive else "plain")
    script = root / "noop.py"
    script.write_text("pass\n")
    with Store.open(None, home) as store:
        make_jobs(store, script)
        scheduler = Scheduler(store)
        runner = LocalRunner(store, home=home, parallelism=4) if drive else None
        created = []
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                fresh = scheduler.step(now_ms())
                created.extend(fresh)
                if runner is not None:
                    for run in fresh:
                        runner.submit(run)
                    runner.driver.step(tick)
                else:
                    time.sleep(tick)
            if runner is not None:
                runner.driver.run_until_done()
        finally:
            if runner is not None:
                runner.close()
        to_created = [r.created_time - r.trigger_info["scheduled_time"] for r in created]
        result: dict[str, object] = {"phase": "created", **percentiles(to_created)}
        if drive:
            starts = []
            for run in created:
                attempts = store.list_task_runs(run.run_id)
                if attempts and attempts[0].start_time:
                    starts.append(min(a.start_time for a in attempts) - run.trigger_info["scheduled_time"])
            result = {"phase": "task start", **percentiles(starts), "created": percentiles(to_created)}
        return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--tick", type=float, default=0.02)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sluice-bench-sched-") as tmp:
        root = Path(tmp)
        for drive in (False, True):
            print(json.dumps(phase(root, args.seconds, args.tick, drive=drive)), flush=True)


if __name__ == "__main__":
    main()
