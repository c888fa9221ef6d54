"""The scheduler service: ``tick(now)`` turns schedules and triggers into runs, exactly once per slot.

Each tick reads every job and every trigger row, and per job with a ``schedule``, ``trigger`` or
``continuous``:

* a *new or changed* trigger (its fingerprint: expression, zone, url, tables, pause status) starts afresh
  from now: its row is (re)written, nothing fires for the past (no back-fill; resume = start from now);
* a paused one does nothing more (its runs in progress continue);
* otherwise the pure decision (``slots.decide``, ``events.ready``, ``continuous.start_at``) says whether a
  run starts now, and ``store.scheduler.fire`` writes the trigger's new state, the slot and the run in one
  transaction (compare-and-set on the trigger row + unique slot key: never twice, even with two
  schedulers on one database).

Runs go through ``engine.submit.run_now``, so ``max_concurrent_runs`` and ``queue`` apply (QUEUED or
SKIPPED); driving them is the orchestrator's job. Runs of schedules and periodic triggers have trigger
``PERIODIC`` and ``trigger_info.scheduled_time`` (the slot: ``{{job.trigger.time.*}}``); file arrival
``FILE_ARRIVAL`` with ``trigger_info.file_arrival_location``; table update ``TABLE`` with
``trigger_info.table_update``; continuous ``CONTINUOUS``.

A job whose trigger cannot be evaluated (an expression that no longer parses, a location that cannot be
listed) is logged once per problem and skipped; the other jobs go on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sluice.crashpoints import crash_point
from sluice.engine.clock import Clock, now_ms
from sluice.engine.submit import run_now
from sluice.errors import NotFoundError, SluiceError
from sluice.scheduler import continuous, events, slots
from sluice.scheduler.file_arrival import Listing, Scanner
from sluice.scheduler.table_update import TableState, TableVersions, condition_met, updated_tables
from sluice.states import LifeCycleState, PauseStatus, TriggerType
from sluice.store import Store
from sluice.store import scheduler as rows
from sluice.store.records import JobRecord, RunRecord

log = logging.getLogger("sluice.scheduler")

#: How often a file-arrival location is listed and table versions are read (milliseconds).
DEFAULT_POLL_MS = 5_000
#: Default pause between ticks of ``run_forever`` (seconds).
DEFAULT_TICK_SECONDS = 0.1

_KINDS = ("schedule", "periodic", "file_arrival", "table_update", "continuous")


@dataclass(frozen=True)
class Watched:
    """One trigger of one job as the settings say it now: its kind, settings and fingerprint."""

    job: JobRecord
    kind: str
    settings: dict[str, Any]
    paused: bool
    config: str


def watched(job: JobRecord) -> Watched | None:
    """The trigger a job's settings define (None: none the scheduler handles)."""
    s = job.settings
    if isinstance(s.get("schedule"), dict):
        sched = s["schedule"]
        cfg = {"expr": sched.get("quartz_cron_expression"), "tz": sched.get("timezone_id")}
        return _watched(job, "schedule", sched, sched, cfg)
    if isinstance(s.get("continuous"), dict):
        return _watched(job, "continuous", s["continuous"], s["continuous"], {})
    trigger = s.get("trigger")
    if not isinstance(trigger, dict):
        return None
    for kind in ("periodic", "file_arrival", "table_update"):
        body = trigger.get(kind)
        if isinstance(body, dict):
            cfg = {
                "periodic": {"interval": body.get("interval"), "unit": body.get("unit")},
                "file_arrival": {"url": body.get("url")},
                "table_update": {
                    "tables": sorted(body.get("table_names") or ()),
                    "condition": body.get("condition") or "ANY_UPDATED",
                },
            }[kind]
            return _watched(job, kind, body, trigger, cfg)
    return None


def _watched(
    job: JobRecord, kind: str, body: dict[str, Any], holder: dict[str, Any], cfg: dict[str, Any]
) -> Watched:
    paused = holder.get("pause_status") == PauseStatus.PAUSED.value
    return Watched(job, kind, body, paused, rows.fingerprint({**cfg, "kind": kind, "paused": paused}))


class Scheduler:
    """Fires the store's schedules and triggers; the server calls ``tick(now_ms)`` from its loop.

    ``table_versions`` gives a table's current version (``sluice serve`` gives the store-owned catalog's,
    ``table_update.CatalogTableVersions``; None: table-update triggers wait, logged once); its
    ``close()``, if it has one, is called by ``close()``. ``file_locations`` maps a file-arrival ``url``
    to a local path or fsspec URL (e.g. ``/Volumes/...`` to its directory; default: the url itself).
    ``scan_inline=True`` lists file-arrival locations inside ``tick`` (deterministic tests); by default
    listings run on background threads and a tick only picks up their results.
    """

    #: Its name among the services of ``sluice serve``.
    name = "scheduler"

    def __init__(
        self,
        store: Store,
        *,
        table_versions: TableVersions | None = None,
        clock: Clock = now_ms,
        file_locations: Callable[[str], str] | None = None,
        poll_ms: int = DEFAULT_POLL_MS,
        scan_inline: bool = False,
    ) -> None:
        self.store = store
        self.clock = clock
        self.table_versions = table_versions
        self.file_locations = file_locations or (lambda url: url)
        self.poll_ms = poll_ms
        self.scanner = Scanner(inline=scan_inline)
        self._last_poll: dict[int, int] = {}
        self._logged: set[tuple[int, str]] = set()
        #: (job id, trigger row version) -> the trigger's next slot after its cursor: a cheap "not yet".
        self._next_slot: dict[tuple[int, int], int | None] = {}

    def close(self) -> None:
        self.scanner.close()
        close = getattr(self.table_versions, "close", None)
        if callable(close):
            close()

    # --- the loop -----------------------------------------------------------------------------------

    def tick(self, now_ms: int) -> None:
        """Start every run that is due at ``now_ms``."""
        self.step(now_ms)

    def step(self, now: int) -> list[RunRecord]:
        """``tick``, returning the runs it created."""
        created: list[RunRecord] = []
        stored = rows.load_triggers(self.store)
        wanted: set[tuple[int, str]] = set()
        for job in self._jobs():
            trigger = watched(job)
            if trigger is None:
                continue
            key = (job.job_id, trigger.kind)
            wanted.add(key)
            try:
                run = self._evaluate(trigger, stored.get(key), now)
            except (SluiceError, OSError, ValueError, KeyError, TypeError) as exc:
                self._log_once(job.job_id, f"job {job.job_id}: {trigger.kind} not evaluated: {exc}")
                continue
            if run is not None:
                created.append(run)
        stale = set(stored) - wanted
        if stale:
            rows.delete_triggers(self.store, sorted(stale))
        return created

    def run_forever(self, stop: threading.Event, *, interval: float = DEFAULT_TICK_SECONDS) -> None:
        """Tick with ``clock`` every ``interval`` seconds until ``stop`` is set (local use, tests)."""
        while not stop.is_set():
            try:
                self.tick(self.clock())
            except SluiceError as exc:  # a store hiccup: log and try again next tick
                log.error("scheduler tick failed: %s", exc)
            stop.wait(interval)

    def _jobs(self) -> list[JobRecord]:
        jobs: list[JobRecord] = []
        while True:
            page = self.store.list_jobs(limit=1000, offset=len(jobs))
            jobs.extend(page)
            if len(page) < 1000:
                return jobs

    def _log_once(self, job_id: int, message: str) -> None:
        if (job_id, message) not in self._logged:
            self._logged.add((job_id, message))
            log.warning("%s", message)

    def _evaluate(self, w: Watched, row: rows.TriggerRow | None, now: int) -> RunRecord | None:
        handler = {
            "schedule": self._time_trigger,
            "periodic": self._time_trigger,
            "file_arrival": self._file_arrival,
            "table_update": self._table_update,
            "continuous": self._continuous,
        }[w.kind]
        return handler(w, row, now)

    def _fire(
        self,
        w: Watched,
        row: rows.TriggerRow | None,
        *,
        now: int,
        slot: int,
        state: dict[str, Any],
        trigger: TriggerType,
        info: dict[str, Any],
        state_for: Callable[[RunRecord], dict[str, Any]] | None = None,
    ) -> RunRecord | None:
        def create() -> RunRecord:
            run = run_now(self.store, w.job, now=now, trigger=trigger, trigger_info=info)[0]
            crash_point("scheduler.slot_uncommitted")  # test hook: inside the slot's transaction
            return run

        fired = rows.fire(
            self.store,
            row,
            job_id=w.job.job_id,
            kind=w.kind,
            config=w.config,
            state=state,
            slot_time=slot,
            now=now,
            create_run=create,
            state_for=state_for,
        )
        if fired is None:
            log.info("job %s: slot %s taken by another scheduler", w.job.job_id, slot)
            return None
        crash_point("scheduler.slot_committed")  # test hook: committed, not yet claimed
        log.info("job %s: %s run %s for slot %s", w.job.job_id, w.kind, fired[1].run_id, slot)
        return fired[1]

    def _restart(
        self, w: Watched, row: rows.TriggerRow | None, state: dict[str, Any], now: int
    ) -> rows.TriggerRow | None:
        """Store a new or changed trigger's fresh state (nothing fires for the past)."""
        return rows.put_trigger(
            self.store, row, job_id=w.job.job_id, kind=w.kind, config=w.config, state=state, now=now
        )

    # --- schedule and trigger.periodic ----------------------------------------------------------------

    def _time_spec(self, w: Watched) -> slots.CronSpec | slots.PeriodicSpec:
        if w.kind == "schedule":
            return slots.CronSpec.of(
                str(w.settings["quartz_cron_expression"]), str(w.settings["timezone_id"])
            )
        return slots.PeriodicSpec.of(int(w.settings["interval"]), str(w.settings["unit"]))

    def _time_trigger(self, w: Watched, row: rows.TriggerRow | None, now: int) -> RunRecord | None:
        spec = self._time_spec(w)
        if row is None or row.config != w.config:
            previous = slots.SlotState.from_json(row.state) if row and "cursor" in row.state else None
            self._restart(w, row, slots.SlotState.start(now, previous).to_json(), now)
            return None
        if w.paused:
            return None
        state = slots.SlotState.from_json(row.state)
        memo = (w.job.job_id, row.version)
        if memo not in self._next_slot:
            upcoming = slots.next_fire_times(spec, state.anchor, state.cursor, 1)
            self._next_slot = {k: v for k, v in self._next_slot.items() if k[0] != w.job.job_id}
            self._next_slot[memo] = upcoming[0] if upcoming else None
        upcoming_slot = self._next_slot[memo]
        if upcoming_slot is None or now < upcoming_slot:
            return None
        decision = slots.decide(spec, state, now)
        if decision is None:
            return None
        info = {"scheduled_time": decision.slot}
        if decision.skipped:
            info["skipped_slots"] = decision.skipped
        return self._fire(
            w,
            row,
            now=now,
            slot=decision.slot,
            state=decision.state.to_json(),
            trigger=TriggerType.PERIODIC,
            info=info,
        )

    # --- continuous -----------------------------------------------------------------------------------

    def _continuous(self, w: Watched, row: rows.TriggerRow | None, now: int) -> RunRecord | None:
        if row is None or row.config != w.config:
            row = self._restart(w, row, continuous.ContinuousState().to_json(), now)
            if row is None:
                return None
        if w.paused:
            return None
        state = continuous.ContinuousState.from_json(row.state)
        last = self._last_run(state.run_id)
        decision = continuous.start_at(state, last)
        if decision is None or now < decision[0]:
            return None
        if self.store.list_runs(job_id=w.job.job_id, active_only=True, limit=1):
            return None  # exactly one active run: a manual run counts too
        failures = decision[1]
        return self._fire(
            w,
            row,
            now=now,
            slot=now,
            state=continuous.ContinuousState(None, failures, now).to_json(),
            trigger=TriggerType.CONTINUOUS,
            info={"failures_before": failures} if failures else {},
            state_for=lambda run: continuous.ContinuousState(run.run_id, failures, now).to_json(),
        )

    def _last_run(self, run_id: int | None) -> continuous.LastRun | None:
        if run_id is None:
            return None
        try:
            run = self.store.get_run(run_id)
        except NotFoundError:
            return None
        return continuous.LastRun(LifeCycleState(run.state).is_terminal, run.result_state, run.end_time)

    # --- file arrival ---------------------------------------------------------------------------------

    def _poll_due(self, job_id: int, now: int) -> bool:
        return self.scanner.busy(job_id) or now - self._last_poll.get(job_id, -(2**62)) >= self.poll_ms

    def _scan(self, w: Watched, now: int) -> Listing | None:
        listing = self.scanner.request(w.job.job_id, self.file_locations(str(w.settings["url"])))
        if listing is not None:
            self._last_poll[w.job.job_id] = now
            if listing.error:
                self._log_once(w.job.job_id, f"job {w.job.job_id}: file arrival: {listing.error}")
                return None
            if listing.truncated:
                self._log_once(
                    w.job.job_id,
                    f"job {w.job.job_id}: more than {self.scanner.limit} files under {w.settings['url']}: "
                    "files past the limit are not seen; point the trigger at a narrower directory",
                )
        return listing

    def _file_arrival(self, w: Watched, row: rows.TriggerRow | None, now: int) -> RunRecord | None:
        job_id = w.job.job_id
        fresh = row is None or row.config != w.config
        if fresh and w.paused:
            self._restart(w, row, {}, now)
            return None
        if w.paused or not (fresh or self._poll_due(job_id, now)):
            listing = None
        else:
            listing = self._scan(w, now)
            if fresh and listing is None:
                return None  # the first listing is the baseline: wait for it
        state = events.EventState() if fresh else events.EventState.from_json(row.state if row else {})
        if listing is not None:
            seen = set() if row is None else rows.seen_files(self.store, job_id)
            added = sorted(listing.paths - seen)
            removed = [] if listing.truncated else sorted(seen - listing.paths)
            if added and not fresh:
                state = state.changed(now)
            if added or removed or fresh:
                new = rows.TriggerRow(
                    job_id, w.kind, w.config, state.to_json(), (row.version if row else 0) + 1, now
                )
                row = rows.record_files(self.store, row, new, added=added, removed=removed)
                if row is None or fresh:
                    return None
        if w.paused or row is None or not events.ready(state, events.Timers.of(w.settings), now):
            return None
        url = str(w.settings["url"])
        return self._fire(
            w,
            row,
            now=now,
            slot=now,
            state=state.fired(now).to_json(),
            trigger=TriggerType.FILE_ARRIVAL,
            info={"file_arrival_location": url},
        )

    # --- table update ---------------------------------------------------------------------------------

    def _versions(self, w: Watched) -> dict[str, int | None] | None:
        if self.table_versions is None:
            self._log_once(
                w.job.job_id,
                f"job {w.job.job_id}: table_update trigger waits: this scheduler has no catalog "
                "(pass table_versions=...)",
            )
            return None
        return {name: self.table_versions(name) for name in sorted(w.settings.get("table_names") or ())}

    def _table_update(self, w: Watched, row: rows.TriggerRow | None, now: int) -> RunRecord | None:
        job_id = w.job.job_id
        fresh = row is None or row.config != w.config
        if w.paused:
            if fresh:
                self._restart(w, row, {}, now)
            return None
        versions = self._versions(w) if fresh or self._poll_due(job_id, now) else None
        if fresh:
            if versions is not None:
                self._last_poll[job_id] = now
                self._restart(w, row, {"tables": TableState(versions, versions).to_json(), "event": {}}, now)
            return None
        assert row is not None
        tables = TableState.from_json(row.state.get("tables", {}))
        state = events.EventState.from_json(row.state.get("event", {}))
        names = sorted(w.settings.get("table_names") or ())
        condition = str(w.settings.get("condition") or "ANY_UPDATED")
        if versions is not None:
            self._last_poll[job_id] = now
            if versions != dict(tables.seen):
                tables = TableState(tables.base, versions)
                state = events.EventState(
                    condition_met(condition, names, updated_tables(tables.base, versions)),
                    now,
                    state.last_fire,
                )
                row = self._restart(w, row, {"tables": tables.to_json(), "event": state.to_json()}, now)
                if row is None:
                    return None
        if not events.ready(state, events.Timers.of(w.settings), now):
            return None
        return self._fire_tables(w, row, tables, state, now)

    def _fire_tables(
        self, w: Watched, row: rows.TriggerRow, tables: TableState, state: events.EventState, now: int
    ) -> RunRecord | None:
        updated = updated_tables(tables.base, tables.seen)
        commit = getattr(self.table_versions, "commit_timestamp", None)
        details: dict[str, Any] = {}
        for name in updated:
            version = tables.seen[name]
            assert version is not None
            stamp = commit(name, version) if callable(commit) else None
            details[name] = {
                "version": version,
                "commit_timestamp": stamp if stamp is not None else state.last_change,
            }
        info = {"table_update": {"updated_tables": updated, "tables": details}}
        new_tables = TableState(dict(tables.seen), dict(tables.seen))
        return self._fire(
            w,
            row,
            now=now,
            slot=now,
            state={"tables": new_tables.to_json(), "event": state.fired(now).to_json()},
            trigger=TriggerType.TABLE,
            info=info,
        )
