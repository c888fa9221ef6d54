"""Running jobs on this machine: deploy definitions into the store and drive runs to their end.

The CLI is a thin layer over these functions; the server (a later issue) reuses them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.engine.clock import now_ms
from sluice.engine.driver import Driver, Listener
from sluice.engine.identity import DriverId
from sluice.engine.reconcile import orphaned_runs
from sluice.engine.runstate import RunState
from sluice.executors.local import LocalExecutor
from sluice.spec.cache import CompiledJob
from sluice.states import LifeCycleState
from sluice.store import Store
from sluice.store.records import JobRecord, RunRecord

#: How often a process holding a QUEUED run checks whether it may start.
QUEUE_POLL_S = 0.2


@dataclass(frozen=True)
class Deployed:
    job: JobRecord
    created: bool
    changed: bool


def deploy_key(loaded: CompiledJob) -> str:
    """Redeploying the same definition updates its job: bundles by name and key, files by path and key."""
    if loaded.bundle_name:
        return f"bundle:{loaded.bundle_name}/{loaded.target or ''}/{loaded.key}"
    return f"file:{loaded.source_file.resolve()}#{loaded.key}"


def deploy(store: Store, loaded: CompiledJob, *, now: int) -> Deployed:
    """Create the job, or update it in place when it was deployed before (never a duplicate)."""
    settings = loaded.settings
    key = deploy_key(loaded)
    source = str(loaded.source_file.resolve())
    existing = store.find_job_by_bundle_key(key)
    if existing is None:
        job = store.create_job(settings, now=now, bundle_key=key, source_path=source)
        return Deployed(job, created=True, changed=True)
    if existing.settings == settings and existing.source_path == source:
        return Deployed(existing, created=False, changed=False)
    job = store.update_job(existing.job_id, settings, now=now, source_path=source)
    return Deployed(job, created=False, changed=True)


def base_dir_of(store: Store, run: RunRecord) -> Path:
    """Where relative WORKSPACE paths of a run's job resolve: the directory of its definition file."""
    if run.job_id is not None:
        try:
            source = store.get_job(run.job_id).source_path
        except Exception:
            source = None
        if source:
            return Path(source).parent
    return Path.cwd()


class LocalRunner:
    """One driver with its task executor, for the life of a CLI command."""

    def __init__(
        self,
        store: Store,
        *,
        home: Path,
        parallelism: int,
        listener: Listener | None = None,
        executor: LocalExecutor | None = None,
    ) -> None:
        self.store = store
        self.driver_id = DriverId.current()
        self.executor = executor or LocalExecutor()
        self.executor.start()
        self.driver = Driver(
            store,
            self.executor,
            home=home,
            parallelism=parallelism,
            listener=listener,
            driver_id=self.driver_id,
        )

    def close(self) -> None:
        self.executor.close()

    def __enter__(self) -> LocalRunner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def adopt_orphans(self) -> list[RunState]:
        """Take over every run whose driver died (QUEUED ones wait for their turn)."""
        adopted = []
        for run in orphaned_runs(self.store, now=now_ms()):
            if not self.store.take_over_run(
                run.run_id, expected_driver=run.driver, driver=str(self.driver_id), now=now_ms()
            ):
                continue
            if run.state == LifeCycleState.QUEUED.value:
                claimed = self.wait_for_slot(self.store.get_run(run.run_id))
                if claimed is None:
                    continue
                run = claimed
            adopted.append(
                self.driver.adopt(self.store.get_run(run.run_id), base_dir=base_dir_of(self.store, run))
            )
        return adopted

    def wait_for_slot(self, run: RunRecord, *, timeout_s: float | None = None) -> RunRecord | None:
        """Block while ``run`` is QUEUED; None if it ended meanwhile (canceled) or the wait timed out."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        max_runs = int(run.settings.get("max_concurrent_runs", 1))
        while True:
            claimed = self.store.claim_queued_run(
                run.run_id, driver=str(self.driver_id), now=now_ms(), max_concurrent_runs=max_runs
            )
            if claimed is not None:
                return claimed
            current = self.store.get_run(run.run_id)
            if current.state != LifeCycleState.QUEUED.value:
                return current if current.state == LifeCycleState.PENDING.value else None
            if deadline is not None and time.monotonic() > deadline:
                return None
            time.sleep(QUEUE_POLL_S)

    def drive(self, runs: Sequence[RunRecord]) -> list[RunState]:
        """Adopt ``runs`` (PENDING) and advance them, and any adopted orphans, to their end."""
        states = [self.driver.adopt(r, base_dir=base_dir_of(self.store, r)) for r in runs]
        self.driver.run_until_done()
        return states
