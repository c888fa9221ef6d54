"""Daylight saving time through the scheduler (store + tick), not only through cron.py.

Each scenario ticks a real store every minute across a transition day and compares the slots the
scheduler fired with the documented policy (docs/guide/schedules.md, section 2).
"""

from __future__ import annotations

from itertools import takewhile
from pathlib import Path

import pytest
from scheduler_support import cron_job, ms, wall

from sluice import cron
from sluice.scheduler import Scheduler
from sluice.scheduler.slots import CronSpec, cron_slots_after
from sluice.store import Store

DAILY_0230 = "0 30 2 * * ?"
DAILY_0130 = "0 30 1 * * ?"
HOURLY_30 = "0 30 * * * ?"
HOURLY_00 = "0 0 * * * ?"
EVERY_15 = "0 0/15 * * * ?"
EXPRESSIONS = (DAILY_0230, DAILY_0130, HOURLY_30, HOURLY_00, EVERY_15)


def fired_walls(tmp_path: Path, tz: str, day: str) -> dict[str, list[str]]:
    """Tick every minute from 00:00 to 05:00 local on ``day``: each expression's fired slots (wall time)."""
    with Store.open(None, tmp_path) as store:
        jobs = {expr: store.create_job(cron_job(expr, tz), now=0).job_id for expr in EXPRESSIONS}
        scheduler = Scheduler(store)
        start, end = ms(f"{day} 00:00:00", tz), ms(f"{day} 05:00:00", tz)
        scheduler.tick(start - 60_000)
        for now in range(start, end + 1, 60_000):
            scheduler.tick(now)
        out = {}
        for expr, job_id in jobs.items():
            runs = sorted(store.list_runs(job_id=job_id, limit=1000), key=lambda r: r.run_id)
            assert all(r.created_time == r.trigger_info["scheduled_time"] for r in runs)  # on time
            out[expr] = [wall(r.trigger_info["scheduled_time"], tz)[11:] for r in runs]
            slots = takewhile(lambda s: s <= end, cron_slots_after(CronSpec.of(expr, tz), start - 60_000))
            expected = [wall(s, tz)[11:] for s in slots]
            assert out[expr] == expected, expr  # the scheduler agrees with cron.py's policy
        return out


def test_new_york_spring_forward(tmp_path: Path) -> None:
    got = fired_walls(tmp_path, "America/New_York", "2025-03-09")
    assert got[DAILY_0230] == ["03:00:00-0400"]  # 02:30 does not exist: made up at the jump
    assert got[DAILY_0130] == ["01:30:00-0500"]
    assert got[HOURLY_30] == ["00:30:00-0500", "01:30:00-0500", "03:30:00-0400", "04:30:00-0400"]
    assert got[HOURLY_00][:4] == ["00:00:00-0500", "01:00:00-0500", "03:00:00-0400", "04:00:00-0400"]
    assert got[EVERY_15][6:9] == ["01:30:00-0500", "01:45:00-0500", "03:00:00-0400"]


def test_new_york_fall_back(tmp_path: Path) -> None:
    got = fired_walls(tmp_path, "America/New_York", "2025-11-02")
    assert got[DAILY_0230] == ["02:30:00-0500"]
    assert got[DAILY_0130] == ["01:30:00-0400"]  # once, the first time round
    assert got[HOURLY_30] == [
        "00:30:00-0400",
        "01:30:00-0400",
        "02:30:00-0500",
        "03:30:00-0500",
        "04:30:00-0500",
    ]
    assert got[EVERY_15][6:9] == ["01:30:00-0400", "01:45:00-0400", "02:00:00-0500"]
    assert len(got[EVERY_15]) == 4 * 5 + 1  # each wall time once: the repeated hour does not fire again


def test_london_spring_forward_and_fall_back(tmp_path: Path) -> None:
    spring = fired_walls(tmp_path / "spring", "Europe/London", "2025-03-30")
    assert spring[DAILY_0130] == ["02:00:00+0100"]
    assert spring[HOURLY_00][:3] == ["00:00:00+0000", "02:00:00+0100", "03:00:00+0100"]
    autumn = fired_walls(tmp_path / "autumn", "Europe/London", "2025-10-26")
    assert autumn[DAILY_0130] == ["01:30:00+0100"]
    assert autumn[HOURLY_30][:3] == ["00:30:00+0100", "01:30:00+0100", "02:30:00+0000"]


def test_lord_howe_half_hour_shifts(tmp_path: Path) -> None:
    october = fired_walls(tmp_path / "oct", "Australia/Lord_Howe", "2025-10-05")
    assert october[HOURLY_00][:4] == ["00:00:00+1030", "01:00:00+1030", "02:30:00+1100", "03:00:00+1100"]
    assert october[EVERY_15][7:10] == ["01:45:00+1030", "02:30:00+1100", "02:45:00+1100"]
    april = fired_walls(tmp_path / "apr", "Australia/Lord_Howe", "2025-04-06")
    assert april[HOURLY_00][:3] == ["00:00:00+1100", "01:00:00+1100", "02:00:00+1030"]
    gaps = [
        b - a
        for a, b in zip(
            [ms(f"2025-04-06 {t[:8]}", "Australia/Lord_Howe", fold=0) for t in april[EVERY_15]],
            [ms(f"2025-04-06 {t[:8]}", "Australia/Lord_Howe", fold=0) for t in april[EVERY_15]][1:],
            strict=False,
        )
    ]
    assert sorted(set(gaps)) == [15 * 60_000, 45 * 60_000]  # one 45-minute gap in real time


@pytest.mark.parametrize("tz", ["America/New_York", "Europe/London", "Australia/Lord_Howe"])
def test_daily_schedule_fires_once_every_day_of_a_year(tmp_path: Path, tz: str) -> None:
    """A year of 3-hourly ticks: each daily schedule fires once per local day, both transitions included."""
    with Store.open(None, tmp_path) as store:
        job_ids = {e: store.create_job(cron_job(e, tz), now=0).job_id for e in (DAILY_0230, DAILY_0130)}
        scheduler = Scheduler(store)
        start = ms("2025-01-01 00:00:00", tz)
        scheduler.tick(start)
        for now in range(start + 3 * 3_600_000, ms("2026-01-01 00:00:00", tz), 3 * 3_600_000):
            scheduler.tick(now)
        zone = cron.resolve_timezone(tz)
        for job_id in job_ids.values():
            runs = store.list_runs(job_id=job_id, limit=1000)
            days = [wall(r.trigger_info["scheduled_time"], tz)[:10] for r in runs]
            assert len(days) == 365
            assert len(set(days)) == 365, zone
