"""The scheduler on the real clock: a ``0/5 * * * * ?`` schedule fires on time, runs are driven to the end."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

from sluice.engine.local import LocalRunner
from sluice.scheduler import Scheduler
from sluice.store import Store


def test_every_five_seconds_fires_on_time_every_ten_seconds(tmp_path: Path) -> None:
    script = tmp_path / "ok.py"
    script.write_text("print('tick')\n")
    with Store.open(None, tmp_path / "home") as store:
        settings = {
            "name": "every-5s",
            "max_concurrent_runs": 5,
            "schedule": {"quartz_cron_expression": "0/5 * * * * ?", "timezone_id": "UTC"},
            "tasks": [{"task_key": "a", "spark_python_task": {"python_file": str(script)}}],
        }
        job = store.create_job(settings, now=int(time.time() * 1000))
        scheduler = Scheduler(store)
        stop = threading.Event()
        loop = threading.Thread(target=scheduler.run_forever, args=(stop,), kwargs={"interval": 0.05})
        loop.start()
        try:
            time.sleep(12.5)
        finally:
            stop.set()
            loop.join()
        runs = sorted(store.list_runs(job_id=job.job_id, limit=100), key=lambda r: r.run_id)
        slots = [r.trigger_info["scheduled_time"] for r in runs]
        # ~12 s of 5-second slots, at least 10 s apart: one or two runs, each on a slot and on time.
        assert 1 <= len(runs) <= 2, slots
        assert all(slot % 5000 == 0 for slot in slots)
        assert all(0 <= r.created_time - r.trigger_info["scheduled_time"] < 1500 for r in runs)
        assert all(b - a >= 10_000 for a, b in itertools.pairwise(slots))
        assert {r.trigger for r in runs} == {"PERIODIC"}
        with LocalRunner(store, home=tmp_path / "home", parallelism=2) as runner:
            runner.drive(runs)
        finished = [store.get_run(r.run_id) for r in runs]
        assert [r.result_state for r in finished] == ["SUCCESS"] * len(runs)
