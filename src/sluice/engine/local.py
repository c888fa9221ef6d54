"""Running jobs on this machine: deploy definitions into the store and drive runs to their end.

The CLI is a thin layer over these functions; the server (a later issue) reuses them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sluice.compute.manager import ComputeManager
from sluice.engine.clock import now_ms
from sluice.engine.driver import Driver, Listener
from sluice.engine.identity import DriverId
from sluice.engine.reconcile import orphaned_runs
from sluice.engine.runstate import base_dir_of
from sluice.errors import InvalidJobError, NotFoundError, Problem
from sluice.executors.local import LocalExecutor
from sluice.spec.cache import CompiledJob
from sluice.states import LifeCycleState
from sluice.store import Store
from sluice.store.records import JobRecord, RunRecord


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


def _holders(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The job and each of its tasks (for-each nested tasks included): where notification settings live."""
    found = [settings]
    for task in settings.get("tasks") or ():
        found.append(task)
        nested = (task.get("for_each_task") or {}).get("task")
        if nested:
            found.append(nested)
    return found


def has_notebook_tasks(settings: dict[str, Any]) -> bool:
    """Whether a job has a notebook task (for-each nested tasks included): its executor then starts a
    kernel ahead (``LocalExecutor.expect_notebooks``)."""
    return any("notebook_task" in h for h in _holders(settings)[1:])


def wants_notifications(settings: dict[str, Any]) -> bool:
    """Whether a job names any email or webhook notification or a run-duration health rule."""
    return any(
        h.get("email_notifications") or h.get("webhook_notifications") or h.get("health")
        for h in _holders(settings)
    )


def deploy(store: Store, loaded: CompiledJob, *, now: int) -> Deployed:
    """Create the job, or update it in place when it was deployed before (never a duplicate).

    Webhook notifications must name existing notification destinations (checked before anything is written).
    """
    settings = loaded.settings
    if any(h.get("webhook_notifications") for h in _holders(settings)):
        from sluice.notify.destinations import validate_destinations

        validate_destinations(store, settings, file=str(loaded.source_file), job=loaded.key)
    key = deploy_key(loaded)
    source = str(loaded.source_file.resolve())
    existing = store.find_job_by_bundle_key(key)
    if existing is None:
        from sluice.identity import local_user

        job = store.create_job(settings, now=now, bundle_key=key, source_path=source, creator=local_user())
        return Deployed(job, created=True, changed=True)
    if existing.settings == settings and existing.source_path == source:
        return Deployed(existing, created=False, changed=False)
    job = store.update_job(existing.job_id, settings, now=now, source_path=source)
    return Deployed(job, created=False, changed=True)


_BUNDLE_JOB_ID = re.compile(r"^\$\{resources\.jobs\.([A-Za-z0-9_-]+)\.id\}$")


def _run_job_payloads(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The run_job_task payloads of a job, nested for-each tasks included."""
    found = []
    for task in settings.get("tasks") or ():
        for candidate in (task, (task.get("for_each_task") or {}).get("task") or {}):
            if "run_job_task" in candidate:
                found.append(candidate["run_job_task"])
    return found


def _problem(job: CompiledJob, message: str, field: str = "run_job_task.job_id") -> InvalidJobError:
    return InvalidJobError([Problem(message, file=str(job.source_file), job=job.key, field=field)])


#: ``${resources.jobs.<key>.id}`` inside any string of a bundle job's settings (a parameter, a tag, ...).
_BUNDLE_JOB_REF = re.compile(r"\$\{resources\.jobs\.([A-Za-z0-9_-]+)\.id\}")


def _referenced_keys(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_BUNDLE_JOB_REF.findall(value))
    if isinstance(value, dict):
        return set().union(*(_referenced_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_referenced_keys(v) for v in value))
    return set()


def _with_ids(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, str):
        return _BUNDLE_JOB_REF.sub(lambda m: str(ids[m.group(1)]) if m.group(1) in ids else m.group(0), value)
    if isinstance(value, dict):
        return {k: _with_ids(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_ids(v, ids) for v in value]
    return value


def _check_targets(store: Store, job: CompiledJob, settings: dict[str, Any], own_id: int | None) -> None:
    """Every job a run-job task names exists, and none of them runs this job again (transitively)."""
    seen: set[int] = set()
    pending = [(int(p["job_id"]), [job.key]) for p in _run_job_payloads(settings)]
    while pending:
        job_id, path = pending.pop()
        if own_id is not None and job_id == own_id:
            raise _problem(job, f"the job would run itself: {' -> '.join([*path, job.key])}")
        if job_id in seen:
            continue
        seen.add(job_id)
        try:
            target = store.get_job(job_id)
        except NotFoundError:
            raise _problem(
                job, f"run_job_task names job {job_id}, which does not exist; deploy it first"
            ) from None
        name = str(target.settings.get("name") or job_id)
        pending.extend(
            (int(p["job_id"]), [*path, name])
            for p in _run_job_payloads(target.settings)
            if not isinstance(p["job_id"], str)
        )


def deploy_with_references(
    store: Store, job: CompiledJob, siblings: Sequence[CompiledJob], *, now: int, _path: tuple[str, ...] = ()
) -> Deployed:
    """Deploy ``job`` after the bundle jobs its run-job tasks name by key (``${resources.jobs.<key>.id}``).

    Checks first that the named jobs exist and that none would run this job again, so a job that would
    run itself is refused before anything is written.
    """
    if job.key in _path:
        raise _problem(job, f"the job would run itself: {' -> '.join([*_path, job.key])}")
    settings = copy.deepcopy(job.settings)
    by_key = {s.key: s for s in siblings}
    for payload in _run_job_payloads(settings):
        match = _BUNDLE_JOB_ID.match(str(payload["job_id"]))
        if match is None:
            continue
        target = by_key.get(match.group(1))
        if target is None:
            raise _problem(job, f"{payload['job_id']} names no job of this bundle")
        payload["job_id"] = deploy_with_references(
            store, target, siblings, now=now, _path=(*_path, job.key)
        ).job.job_id
    existing = store.find_job_by_bundle_key(deploy_key(job))
    _check_targets(store, job, settings, existing.job_id if existing else None)
    keys = _referenced_keys(settings)  # ids named anywhere else, e.g. in a job parameter's default
    if not keys:
        return deploy(store, replace(job, settings=settings), now=now)
    ids: dict[str, int] = {}
    for key in sorted(keys - {job.key}):
        target = by_key.get(key)
        if target is None:
            raise _problem(job, f"${{resources.jobs.{key}.id}} names no job of this bundle", "settings")
        found = store.find_job_by_bundle_key(deploy_key(target))
        if found is None and key in _path:
            cycle = " -> ".join([*_path[_path.index(key) :], job.key, key])
            raise _problem(job, f"jobs name each other's ids before either exists: {cycle}", "settings")
        ids[key] = (
            found.job_id
            if found
            else deploy_with_references(store, target, siblings, now=now, _path=(*_path, job.key)).job.job_id
        )
    created = False
    if job.key in keys:  # its own id: known once it exists
        if existing is None:
            existing = deploy(store, replace(job, settings=_with_ids(settings, ids)), now=now).job
            created = True
        ids[job.key] = existing.job_id
    done = deploy(store, replace(job, settings=_with_ids(settings, ids)), now=now)
    return replace(done, created=True) if created else done


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
        git_timeout: float | None = None,
    ) -> None:
        self.store = store
        self.home = home
        self.parallelism = parallelism
        self.listener = listener
        self.driver_id = DriverId.current()
        self.executor = executor or LocalExecutor()
        self.executor.start()
        self.git_timeout = git_timeout
        self.driver = self._new_driver()

    def _new_driver(self, compute: ComputeManager | None = None) -> Driver:
        extra: dict[str, Any] = {} if self.git_timeout is None else {"git_timeout": self.git_timeout}
        return Driver(
            self.store,
            self.executor,
            home=self.home,
            parallelism=self.parallelism,
            listener=self.listener,
            driver_id=self.driver_id,
            compute=compute,
            **extra,
        )

    def restart_driver(self) -> list[int]:
        """Replace the driver (its memory may be inconsistent after an error) and adopt again every active
        run this process drove: as after a crash, attempts that were running fail and retry by policy
        (their processes are killed first). The executor and the compute sessions are kept. Run ids."""
        self.driver.close(kill_tasks=True)
        self.driver = self._new_driver(self.driver.compute)
        ours = [r for r in self.store.active_runs() if r.driver == str(self.driver_id)]
        for run in ours:
            self.submit(run)
        return [r.run_id for r in ours]

    def close(self) -> None:
        self.driver.close()
        self.executor.close()
        self.driver.compute.close()

    def __enter__(self) -> LocalRunner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def adopt_orphans(self, *, job_id: int | None = None) -> int:
        """Take over runs whose driver died (only ``job_id``'s when given); never blocks.

        RUNNING ones are adopted at once (their interrupted attempts fail and retry by policy); QUEUED ones
        start when their turn comes. Returns how many orphans were left alone because of ``job_id``.
        """
        left = 0
        for run in orphaned_runs(self.store, now=now_ms()):
            if job_id is not None and run.job_id != job_id:
                left += 1
                continue
            if self.store.take_over_run(
                run.run_id, expected_driver=run.driver, driver=str(self.driver_id), now=now_ms()
            ):
                self.submit(self.store.get_run(run.run_id))
        return left

    def submit(self, run: RunRecord) -> None:
        """Drive ``run``: now if it is PENDING or RUNNING, when its turn comes if it is QUEUED."""
        if has_notebook_tasks(run.settings):
            self.executor.expect_notebooks()  # a kernel starts ahead while the run is set up (ADR 0005)
        base_dir = base_dir_of(self.store, run)
        if run.state == LifeCycleState.QUEUED.value:
            self.driver.adopt_queued(run, base_dir=base_dir)
        elif not LifeCycleState(run.state).is_terminal:
            self.driver.adopt(run, base_dir=base_dir)

    def drive(self, runs: Sequence[RunRecord]) -> None:
        """Submit ``runs`` and advance them, with every run adopted before, to their end."""
        for run in runs:
            self.submit(run)
        self.driver.run_until_done()
