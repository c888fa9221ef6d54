"""The store across real OS processes: concurrency limits under racing writers, migration races, and the
fast open path that never imports SQLAlchemy or Alembic."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from collections.abc import Iterator, Sequence
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from sluice.store import Store
from sluice.store.testing import postgres_schema, require_postgres

ROUNDS = 25
WAIT = 60.0

#: Opens a store from argv (url or "", home) and prints which heavy modules the open imported.
OPEN_SCRIPT = """
import sys
from pathlib import Path
from sluice.store import Store
with Store.open(sys.argv[1] or None, Path(sys.argv[2])) as store:
    store.count_jobs()
print(",".join(sorted({m.split(".")[0] for m in sys.modules} & {"sqlalchemy", "alembic"})))
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database's URL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sluice.db'}"
    else:
        with postgres_schema(require_postgres()) as pg_url:
            yield pg_url


def heavy_modules_imported_by_open(url: str, home: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", OPEN_SCRIPT, url, str(home)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip()


def test_opening_an_up_to_date_database_imports_no_sqlalchemy(url: str, tmp_path: Path) -> None:
    assert heavy_modules_imported_by_open(url, tmp_path) == "alembic,sqlalchemy"  # it had to migrate
    assert heavy_modules_imported_by_open(url, tmp_path) == ""


def test_the_default_store_opens_without_sqlalchemy_once_migrated(tmp_path: Path) -> None:
    assert heavy_modules_imported_by_open("", tmp_path) == "alembic,sqlalchemy"
    assert heavy_modules_imported_by_open("", tmp_path) == ""


# --- racing writers -------------------------------------------------------------------------------------


def _run_args(job_id: int, round_number: int, queue_enabled: bool) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "settings": {},
        "run_name": f"round {round_number}",
        "run_type": "JOB_RUN",
        "trigger": "ONE_TIME",
        "job_parameters": [],
        "overriding_parameters": {},
        "now": round_number,
        "queue_enabled": queue_enabled,
        "max_concurrent_runs": 1,
    }


def create_runs_in_step(
    url: str, home: str, job_id: int, queue_enabled: bool, barrier: Barrier, results: Any
) -> None:
    """Each round: wait for the others, create a run at the same instant, report its state, await cleanup."""
    with Store.open(url, Path(home)) as store:
        for round_number in range(ROUNDS):
            barrier.wait(WAIT)
            run, _ = store.create_run(
                **_run_args(job_id, round_number, queue_enabled), driver=f"worker {home}"
            )
            results.put((round_number, run.state))
            barrier.wait(WAIT)
            barrier.wait(WAIT)


@pytest.mark.parametrize("queue_enabled", [True, False], ids=["queue", "no-queue"])
def test_racing_processes_never_exceed_max_concurrent_runs(
    url: str, tmp_path: Path, queue_enabled: bool
) -> None:
    ctx = multiprocessing.get_context("spawn")
    with Store.open(url, tmp_path) as store:
        job_id = store.create_job({"name": "raced", "max_concurrent_runs": 1}, now=0).job_id
        barrier, results = ctx.Barrier(3), ctx.Queue()
        workers = [
            ctx.Process(
                target=create_runs_in_step,
                args=(url, str(tmp_path / f"w{n}"), job_id, queue_enabled, barrier, results),
            )
            for n in range(2)
        ]
        for worker in workers:
            worker.start()
        try:
            states = [_referee_round(store, job_id, barrier, results) for _ in range(ROUNDS)]
        except BaseException:
            barrier.abort()  # release the workers at once
            raise
        finally:
            _join(workers)
    assert [w.exitcode for w in workers] == [0, 0]
    loser = "QUEUED" if queue_enabled else "SKIPPED"
    assert states == [["PENDING", loser]] * ROUNDS


def _referee_round(store: Store, job_id: int, barrier: Barrier, results: Any) -> list[str]:
    """Let both workers create a run, check the job's runs, then end them all for the next round."""
    barrier.wait(WAIT)
    barrier.wait(WAIT)
    states = sorted(results.get(timeout=WAIT)[1] for _ in range(2))
    active = [r for r in store.active_runs() if r.job_id == job_id]
    assert len([r for r in active if r.state == "PENDING"]) <= 1
    for run in active:
        store.update_run(run.run_id, state="TERMINATED", result_state="CANCELED", end_time=1)
    barrier.wait(WAIT)
    return states


def _join(workers: Sequence[BaseProcess]) -> None:
    for worker in workers:
        worker.join(WAIT)
        if worker.exitcode is None:
            worker.kill()
            worker.join()


def open_and_create_a_job(url: str, home: str, barrier: Barrier) -> None:
    barrier.wait(WAIT)
    with Store.open(url, Path(home)) as store:
        store.create_job({"name": home}, now=1)


def test_processes_opening_a_new_database_at_once_migrate_it_once(url: str, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    workers = [
        ctx.Process(target=open_and_create_a_job, args=(url, str(tmp_path / f"w{n}"), barrier))
        for n in range(3)
    ]
    for worker in workers:
        worker.start()
    _join(workers)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    with Store.open(url, tmp_path) as store:
        assert sorted(j.job_id for j in store.list_jobs()) == [1, 2, 3]
