"""The scheduler service on a real store (SQLite and PostgreSQL): slots fire once, restarts, races, pause."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from scheduler_support import cron_job, job_settings, ms, open_store

from sluice.scheduler import Scheduler
from sluice.store import Store
from sluice.store import scheduler as rows

__all__ = ["open_store"]

T0 = ms("2025-06-02 12:00:00")
MIN = 60_000


def runs_of(store: Store, job_id: int) -> list[tuple[int, str, int]]:
    """(created time, trigger, scheduled time) of the job's runs, oldest first."""
    runs = sorted(store.list_runs(job_id=job_id, limit=1000), key=lambda r: r.run_id)
    return [(r.created_time, r.trigger, int(r.trigger_info.get("scheduled_time", 0))) for r in runs]


def test_new_schedule_starts_from_now_and_fires_each_slot_once(open_store: Callable[[], Store]) -> None:
    store = open_store()
    job = store.create_job(cron_job("0 0/15 * * * ?"), now=T0 - 7 * MIN)
    scheduler = Scheduler(store)
    scheduler.tick(T0 - 5 * MIN)  # first sight: 11:45 is in the past and is not back-filled
    assert runs_of(store, job.job_id) == []
    scheduler.tick(T0 - 1)
    assert runs_of(store, job.job_id) == []
    for now in (T0 + 250, T0 + 900, T0 + 5_000, T0 + 14 * MIN):
        scheduler.tick(now)
    assert runs_of(store, job.job_id) == [(T0 + 250, "PERIODIC", T0)]
    scheduler.tick(T0 + 15 * MIN)
    assert [r[2] for r in runs_of(store, job.job_id)] == [T0, T0 + 15 * MIN]
    assert [s.slot_time for s in rows.list_slots(store, job.job_id)] == [T0, T0 + 15 * MIN]


def test_restart_fires_only_the_latest_missed_slot(open_store: Callable[[], Store]) -> None:
    store = open_store()
    job = store.create_job(cron_job("0 * * * * ?"), now=T0)
    first = Scheduler(store)
    first.tick(T0)
    first.tick(T0 + MIN)
    assert [r[2] for r in runs_of(store, job.job_id)] == [T0 + MIN]
    # Down for 3 hours: a new scheduler (a restart) on the same database fires ONE run, for the latest slot.
    second = Scheduler(open_store())
    second.tick(T0 + 181 * MIN + 30_000)
    second.tick(T0 + 181 * MIN + 31_000)
    runs = runs_of(store, job.job_id)
    assert [r[2] for r in runs] == [T0 + MIN, T0 + 181 * MIN]
    assert store.list_runs(job_id=job.job_id, limit=1)[0].trigger_info["skipped_slots"] == 179
    second.tick(T0 + 182 * MIN)
    assert [r[2] for r in runs_of(store, job.job_id)][-1] == T0 + 182 * MIN


def test_runs_are_at_least_ten_seconds_apart(open_store: Callable[[], Store]) -> None:
    store = open_store()
    job = store.create_job(cron_job("0/5 * * * * ?"), now=T0)
    scheduler = Scheduler(store)
    scheduler.tick(T0 - 1)
    for now in range(T0, T0 + 61_000, 1000):
        scheduler.tick(now)
    slots = [r[2] for r in runs_of(store, job.job_id)]
    assert slots == list(range(T0, T0 + 61_000, 10_000))


def test_two_schedulers_racing_fire_each_slot_once(open_store: Callable[[], Store]) -> None:
    setup = open_store()
    jobs = [setup.create_job(cron_job("0/10 * * * * ?"), now=T0).job_id for _ in range(3)]
    schedulers = [Scheduler(open_store()), Scheduler(open_store())]
    ticks = list(range(T0 - 1000, T0 + 120_000, 500))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def drive(scheduler: Scheduler, offset: int) -> None:
        try:
            for now in ticks:
                barrier.wait(timeout=30)
                scheduler.tick(now + offset)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=drive, args=(s, i)) for i, s in enumerate(schedulers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for job_id in jobs:
        slots = [r[2] for r in runs_of(setup, job_id)]
        assert slots == list(range(T0, T0 + 120_000, 10_000)), job_id
        assert len({s.run_id for s in rows.list_slots(setup, job_id)}) == len(slots)


def test_pause_stops_runs_and_resume_starts_from_now(open_store: Callable[[], Store]) -> None:
    store = open_store()
    job = store.create_job(cron_job("0 * * * * ?"), now=T0)
    scheduler = Scheduler(store)
    scheduler.tick(T0 - 1)
    scheduler.tick(T0)
    store.update_job(job.job_id, cron_job("0 * * * * ?", paused=True), now=T0 + 1)
    for minute in range(1, 10):
        scheduler.tick(T0 + minute * MIN)
    assert [r[2] for r in runs_of(store, job.job_id)] == [T0]
    store.update_job(job.job_id, cron_job("0 * * * * ?"), now=T0 + 10 * MIN + 5)
    scheduler.tick(T0 + 10 * MIN + 30_000)  # resume: the slots missed while paused are not replayed
    scheduler.tick(T0 + 10 * MIN + 40_000)
    assert [r[2] for r in runs_of(store, job.job_id)] == [T0]
    scheduler.tick(T0 + 11 * MIN)
    assert [r[2] for r in runs_of(store, job.job_id)] == [T0, T0 + 11 * MIN]


def test_changing_the_expression_does_not_back_fill(open_store: Callable[[], Store]) -> None:
    store = open_store()
    job = store.create_job(cron_job("0 0 * * * ?"), now=T0)
    scheduler = Scheduler(store)
    scheduler.tick(T0 - 1)
    scheduler.tick(T0)
    store.update_job(job.job_id, cron_job("0 30 * * * ?"), now=T0 + 40 * MIN)
    scheduler.tick(T0 + 45 * MIN)  # 12:30 passed under the new expression: not fired after the change
    scheduler.tick(T0 + 90 * MIN)
    assert [r[2] for r in runs_of(store, job.job_id)] == [T0, T0 + 90 * MIN]


def test_deleted_job_forgets_its_trigger_and_a_job_without_trigger_is_ignored(
    open_store: Callable[[], Store],
) -> None:
    store = open_store()
    job = store.create_job(cron_job("0 * * * * ?"), now=T0)
    plain = store.create_job(job_settings(), now=T0)
    scheduler = Scheduler(store)
    scheduler.tick(T0)
    assert set(rows.load_triggers(store)) == {(job.job_id, "schedule")}
    store.delete_job(job.job_id, now=0)
    scheduler.tick(T0 + MIN)
    assert rows.load_triggers(store) == {}
    assert store.list_runs(job_id=plain.job_id) == []


def test_concurrency_limit_queues_or_skips_scheduled_runs(open_store: Callable[[], Store]) -> None:
    store = open_store()
    queued = store.create_job(cron_job("0 * * * * ?", max_concurrent_runs=1), now=T0)
    skipped = store.create_job(
        cron_job("0 * * * * ?", max_concurrent_runs=1, queue={"enabled": False}), now=T0
    )
    scheduler = Scheduler(store)
    scheduler.tick(T0 - 1)
    scheduler.tick(T0)
    scheduler.tick(T0 + MIN)
    states = {
        job.job_id: [r.state for r in sorted(store.list_runs(job_id=job.job_id), key=lambda r: r.run_id)]
        for job in (queued, skipped)
    }
    assert states[queued.job_id] == ["PENDING", "QUEUED"]
    assert states[skipped.job_id] == ["PENDING", "SKIPPED"]


def test_bad_expression_is_logged_and_other_jobs_still_fire(
    open_store: Callable[[], Store], caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store()
    bad = store.create_job(cron_job("0 0 25 * * ?"), now=T0)  # stored without validation
    good = store.create_job(cron_job("0 * * * * ?"), now=T0)
    scheduler = Scheduler(store)
    scheduler.tick(T0 - 1)
    scheduler.tick(T0)
    scheduler.tick(T0 + 1)
    assert runs_of(store, bad.job_id) == []
    assert len(runs_of(store, good.job_id)) == 1
    messages = [r.getMessage() for r in caplog.records if "not evaluated" in r.getMessage()]
    assert len(messages) == 1
    assert f"job {bad.job_id}" in messages[0]
    assert "hour '25' is out of range" in messages[0]


def test_periodic_trigger_fires_on_its_grid_from_first_sight(open_store: Callable[[], Store]) -> None:
    store = open_store()
    job = store.create_job(job_settings(trigger={"periodic": {"interval": 2, "unit": "HOURS"}}), now=T0)
    scheduler = Scheduler(store)
    scheduler.tick(T0)  # anchor
    scheduler.tick(T0 + 119 * MIN)
    assert runs_of(store, job.job_id) == []
    scheduler.tick(T0 + 120 * MIN + 1)
    scheduler.tick(T0 + 121 * MIN)
    assert runs_of(store, job.job_id) == [(T0 + 120 * MIN + 1, "PERIODIC", T0 + 120 * MIN)]
    # Down for 9 hours: one run for the latest slot, then the grid goes on.
    later = Scheduler(open_store())
    later.tick(T0 + 11 * 60 * MIN)
    later.tick(T0 + 12 * 60 * MIN)
    assert [r[2] for r in runs_of(store, job.job_id)] == [
        T0 + 120 * MIN,
        T0 + 10 * 60 * MIN,
        T0 + 12 * 60 * MIN,
    ]


def test_changing_the_periodic_interval_restarts_the_grid(open_store: Callable[[], Store]) -> None:
    store = open_store()
    job = store.create_job(job_settings(trigger={"periodic": {"interval": 1, "unit": "DAYS"}}), now=T0)
    scheduler = Scheduler(store)
    scheduler.tick(T0)
    store.update_job(
        job.job_id, job_settings(trigger={"periodic": {"interval": 1, "unit": "HOURS"}}), now=T0 + 5 * MIN
    )
    scheduler.tick(T0 + 10 * MIN)
    scheduler.tick(T0 + 69 * MIN)
    assert runs_of(store, job.job_id) == []
    scheduler.tick(T0 + 70 * MIN)
    assert [r[2] for r in runs_of(store, job.job_id)] == [T0 + 70 * MIN]


def test_scheduled_runs_are_the_job_creators(open_store: Callable[[], Store]) -> None:
    store = open_store()
    job = store.create_job(cron_job("0 * * * * ?"), now=T0, creator="ann@example.com")
    scheduler = Scheduler(store)
    scheduler.tick(T0 - 1)
    scheduler.tick(T0 + MIN)
    (run,) = [r for r in store.list_runs(job_id=job.job_id)]
    assert run.creator_user_name == "ann@example.com"
