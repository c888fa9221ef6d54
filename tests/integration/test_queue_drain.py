"""A queue of runs of one job drains without waiting for a poll: the step in which a run ends starts the next.

The driver runs real task processes on a SQLite store, with its clock frozen: nothing that depends on time
passing (the periodic claim of queued runs) can fire, so a queued run starts only because the run ahead of
it ended. Before this, the next queued run waited for the next queued-run poll (200 ms, pushed back by
every step in between): 500 queued no-op runs took 250 s to drain (benchmarks/bench_queue.py).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.engine.clock import now_ms
from sluice.engine.driver import Driver
from sluice.engine.submit import cancel, run_now
from sluice.executors.local import LocalExecutor
from sluice.store import Store
from sluice.store.records import RunRecord

FROZEN = 1_800_000_000_000


@pytest.fixture(scope="module")
def executor() -> Iterator[LocalExecutor]:
    ex = LocalExecutor()
    ex.start()
    try:
        yield ex
    finally:
        ex.close()


def queued_job(store: Store, home: Path, n: int) -> list[RunRecord]:
    """``n`` runs of one no-op job with max_concurrent_runs 1 and queueing on: the first PENDING."""
    script = home / "noop.py"
    script.write_text("pass\n")
    settings: dict[str, Any] = {
        "name": "drain",
        "max_concurrent_runs": 1,
        "queue": {"enabled": True},
        "tasks": [{"task_key": "t", "spark_python_task": {"python_file": str(script)}}],
    }
    job = store.create_job(settings, now=now_ms())
    runs = [run_now(store, job, now=FROZEN)[0] for _ in range(n)]
    assert [r.state for r in runs] == ["PENDING"] + ["QUEUED"] * (n - 1)
    return runs


def frozen_driver(store: Store, executor: LocalExecutor, home: Path, runs: list[RunRecord]) -> Driver:
    driver = Driver(store, executor, home=home, parallelism=2, clock=lambda: FROZEN)
    driver.adopt(runs[0], base_dir=home)
    for run in runs[1:]:
        driver.adopt_queued(run, base_dir=home)
    return driver


def states(store: Store, runs: list[RunRecord]) -> list[str]:
    return [store.get_run(r.run_id).state for r in runs]


def test_the_step_that_ends_a_run_starts_the_next_queued_one(executor: LocalExecutor, tmp_path: Path) -> None:
    with Store.open(None, tmp_path) as store:
        runs = queued_job(store, tmp_path, 4)
        driver = frozen_driver(store, executor, tmp_path, runs)
        ended: list[int] = []
        deadline = time.monotonic() + 60
        while driver.has_work:
            assert time.monotonic() < deadline, f"the queue stopped draining: {states(store, runs)}"
            before = states(store, runs)
            driver.step(driver.wait_time())
            after = states(store, runs)
            for i, (was, now) in enumerate(zip(before, after, strict=True)):
                if was != "TERMINATED" and now == "TERMINATED":
                    ended.append(i)
                    if i + 1 < len(runs):
                        # the same step claimed the next run: no poll, no tick, the clock never moved
                        assert after[i + 1] in ("PENDING", "RUNNING"), after
                        assert after[i + 2 :] == ["QUEUED"] * (len(runs) - i - 2), after
            active = [s for s in after if s in ("PENDING", "RUNNING", "TERMINATING")]
            assert len(active) <= 1, f"max_concurrent_runs 1 was exceeded: {after}"
        assert ended == [0, 1, 2, 3], "the queue drains in FIFO order"
        final = [store.get_run(r.run_id) for r in runs]
        assert [r.result_state for r in final] == ["SUCCESS"] * 4
        for previous, following in itertools.pairwise(final):
            assert following.start_time == previous.end_time == FROZEN


def test_a_long_queue_is_claimed_one_run_per_job_and_forgets_canceled_runs(
    executor: LocalExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(None, tmp_path) as store:
        runs = queued_job(store, tmp_path, 30)
        tries: list[int] = []
        claim = store.claim_queued_run

        def counted(run_id: int, **kwargs: Any) -> RunRecord | None:
            tries.append(run_id)
            return claim(run_id, **kwargs)

        monkeypatch.setattr(store, "claim_queued_run", counted)
        driver = frozen_driver(store, executor, tmp_path, runs)
        canceled = runs[5].run_id
        cancel(store, canceled, now=FROZEN)
        driver.step(0)
        # only the oldest queued run of the job can start: the 28 behind it are not tried one by one
        assert tries == [runs[1].run_id]
        assert canceled not in driver.run_ids, "a run canceled while queued is forgotten all the same"
        assert set(driver.run_ids) == {r.run_id for r in runs} - {canceled}
        deadline = time.monotonic() + 120
        while driver.has_work:
            assert time.monotonic() < deadline, f"the queue stopped draining: {states(store, runs)}"
            driver.step(driver.wait_time())
        final = [store.get_run(r.run_id) for r in runs]
        assert [r.result_state for r in final] == ["SUCCESS"] * 5 + ["CANCELED"] + ["SUCCESS"] * 24
        assert len(tries) <= 2 * len(runs), "a freed slot tries the job's next run (and the one after it)"
