"""Pure decisions of time triggers: properties (never twice, never early, never skipped beyond policy)."""

from __future__ import annotations

from itertools import pairwise, takewhile

from hypothesis import given, settings
from hypothesis import strategies as st
from scheduler_support import ms

from sluice.scheduler import continuous
from sluice.scheduler.slots import (
    MIN_GAP_MS,
    CronSpec,
    PeriodicSpec,
    SlotState,
    cron_slots_after,
    decide,
    due_slots,
    latest_cron_slot,
)

EXPRESSIONS = (
    "0/5 * * * * ?",
    "0 0/15 * * * ?",
    "0 30 * * * ?",
    "0 30 2 * * ?",
    "0 30 1 * * ?",
    "0 0 */2 * * ?",
)
ZONES = ("UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe")
#: Starts near transitions: New York spring/fall 2025, London fall 2025, Lord Howe October 2025.
STARTS = (
    ms("2025-03-09 00:00:00", "America/New_York"),
    ms("2025-11-02 00:00:00", "America/New_York"),
    ms("2025-10-26 00:00:00", "Europe/London"),
    ms("2025-10-05 00:00:00", "Australia/Lord_Howe"),
)


def simulate(spec: CronSpec | PeriodicSpec, start: int, gaps: list[int]) -> tuple[list[tuple[int, int]], int]:
    """Tick at start + cumulative gaps; the (tick time, slot) fires and the last tick."""
    state = SlotState.start(start)
    fires: list[tuple[int, int]] = []
    now = start
    for gap in gaps:
        now += gap
        decision = decide(spec, state, now)
        if decision is not None:
            fires.append((now, decision.slot))
            state = decision.state
    return fires, now


@settings(max_examples=150, deadline=None)
@given(
    expr=st.sampled_from(EXPRESSIONS),
    zone=st.sampled_from(ZONES),
    start=st.sampled_from(STARTS),
    offset=st.integers(0, 6 * 3_600_000),
    gaps=st.lists(st.integers(1, 3 * 3_600_000), min_size=1, max_size=60),
)
def test_cron_slots_never_twice_never_early_never_skipped_beyond_policy(
    expr: str, zone: str, start: int, offset: int, gaps: list[int]
) -> None:
    spec = CronSpec.of(expr, zone)
    begin = start + offset
    fires, last = simulate(spec, begin, gaps)
    fired_slots = [slot for _, slot in fires]
    assert fired_slots == sorted(set(fired_slots))  # never twice
    assert all(begin < slot <= tick for tick, slot in fires)  # never before its time, nothing back-filled
    ticks = [tick for tick, _ in fires]
    assert all(b - a >= MIN_GAP_MS for a, b in pairwise(ticks))
    every = list(takewhile(lambda s: s <= last, cron_slots_after(spec, begin)))
    assert set(fired_slots) <= set(every)
    for slot in set(every) - set(fired_slots):
        superseded = any(slot < fired <= tick for tick, fired in fires)
        waiting = bool(ticks) and last < ticks[-1] + MIN_GAP_MS and slot > fires[-1][1]
        assert superseded or waiting, (slot, fires)


@settings(max_examples=100, deadline=None)
@given(
    interval=st.integers(1, 5),
    unit=st.sampled_from(["MINUTES", "HOURS"]),
    gaps=st.lists(st.integers(1, 4 * 3_600_000), min_size=1, max_size=40),
)
def test_periodic_slots_follow_their_grid(interval: int, unit: str, gaps: list[int]) -> None:
    spec = PeriodicSpec.of(interval, unit)
    begin = ms("2025-03-09 01:00:00", "America/New_York")
    fires, last = simulate(spec, begin, gaps)
    slots = [slot for _, slot in fires]
    assert slots == sorted(set(slots))
    assert all((slot - begin) % spec.interval_ms == 0 and begin < slot <= tick for tick, slot in fires)
    every = due_slots(spec, begin, begin, last, limit=100_000)
    for slot in set(every) - set(slots):
        superseded = any(slot < fired <= tick for tick, fired in fires)
        waiting = bool(fires) and last < fires[-1][0] + MIN_GAP_MS and slot > fires[-1][1]
        assert superseded or waiting, slot


def test_latest_cron_slot_after_a_long_outage_is_found_without_walking_every_slot() -> None:
    spec = CronSpec.of("0/5 * * * * ?", "UTC")
    after = ms("2020-01-01 00:00:00")
    now = ms("2025-06-01 12:34:57")
    assert latest_cron_slot(spec, after, now) == ms("2025-06-01 12:34:55")
    assert latest_cron_slot(spec, now, now) is None
    yearly = CronSpec.of("0 0 0 1 1 ? *", "Europe/London")
    assert latest_cron_slot(yearly, after, now) == ms("2025-01-01 00:00:00", "Europe/London")
    never = CronSpec.of("0 0 0 30 2 ?", "UTC")
    assert latest_cron_slot(never, after, now) is None


def test_catch_up_fires_the_latest_and_counts_the_skipped() -> None:
    spec = CronSpec.of("0 0 * * * ?", "UTC")
    state = SlotState(cursor=ms("2025-06-01 00:00:00"), anchor=0, last_fire=ms("2025-06-01 00:00:00"))
    decision = decide(spec, state, ms("2025-06-01 05:30:00"))
    assert decision is not None
    assert decision.slot == ms("2025-06-01 05:00:00")
    assert decision.skipped == 4
    assert decision.state.cursor == decision.slot


def test_continuous_backoff_schedule() -> None:
    assert [continuous.backoff_ms(n) // 1000 for n in range(11)] == [
        0,
        10,
        20,
        40,
        80,
        160,
        320,
        640,
        1280,
        1800,
        1800,
    ]
    assert continuous.failures_after(3, "SUCCESS") == 0
    assert continuous.failures_after(3, "CANCELED") == 3
    assert continuous.failures_after(3, "FAILED") == 4
    assert continuous.failures_after(0, "TIMEDOUT") == 1
    state = continuous.ContinuousState(run_id=7, failures=2, last_start=1_000)
    assert continuous.start_at(state, continuous.LastRun(False, None, 0)) is None
    ended = continuous.LastRun(True, "FAILED", 100_000)
    assert continuous.start_at(state, ended) == (100_000 + 40_000, 3)
    quick = continuous.LastRun(True, "SUCCESS", 2_000)
    assert continuous.start_at(state, quick) == (1_000 + MIN_GAP_MS, 0)
