"""Pure decisions of time-based triggers (cron schedules and ``trigger.periodic``): which slot fires now.

No clock reads, no I/O: every function takes ``now`` (epoch milliseconds). The scheduler loop keeps, per
trigger, a *cursor* (every slot at or before it has been dealt with) and the tick time of its last fired
run; :func:`decide` turns them and ``now`` into "fire slot S" or "nothing".

The policy (docs/guide/schedules.md, docs/adr/0008-scheduler-slots.md):

* A slot fires at most once: the cursor moves past it in the transaction that records it.
* **No catch-up storm**: of all slots due in (cursor, now] only the latest fires; the others are skipped.
  After downtime that is one run at start-up, never one run per missed tick.
* **At least 10 s between runs** of one trigger (``cron.MIN_SECONDS_BETWEEN_RUNS``): a slot due sooner
  waits, and a later slot due by then replaces it (``0/5 * * * * ?`` runs every 10 s).
* A new trigger, a changed one and an unpaused one start **from now**: no back-fill (``start``).
* Daylight saving time: cron slots are ``cron.next_fire``'s (each wall-clock time at most once, gap times
  made up at the jump unless nothing is late); periodic slots are fixed real-time intervals (UTC).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from sluice import cron

#: Minimum milliseconds between two runs of one trigger (Databricks' 10-second rule).
MIN_GAP_MS = cron.MIN_SECONDS_BETWEEN_RUNS * 1000

#: Milliseconds of one ``trigger.periodic`` unit.
UNIT_MS = {"MINUTES": 60_000, "HOURS": 3_600_000, "DAYS": 86_400_000, "WEEKS": 7 * 86_400_000}

#: Look-back windows of :func:`latest_cron_slot`, growing: the first one holding a fire time is scanned.
_WINDOWS_MS = (60_000, 3_600_000, 86_400_000, 32 * 86_400_000, 367 * 86_400_000, 131 * 367 * 86_400_000)


@dataclass(frozen=True)
class CronSpec:
    """A parsed ``schedule``: expression and zone (cached: parsing happens once per distinct schedule)."""

    expression: cron.CronExpression
    zone: ZoneInfo

    @staticmethod
    def of(quartz_cron_expression: str, timezone_id: str) -> CronSpec:
        return _cron_spec(quartz_cron_expression, timezone_id)


@lru_cache(maxsize=1024)
def _cron_spec(expression: str, timezone_id: str) -> CronSpec:
    return CronSpec(cron.parse(expression), cron.resolve_timezone(timezone_id))


@dataclass(frozen=True)
class PeriodicSpec:
    """A ``trigger.periodic``: slots at ``anchor + k * interval_ms`` for k >= 1 (anchor: first seen)."""

    interval_ms: int

    @staticmethod
    def of(interval: int, unit: str) -> PeriodicSpec:
        if unit not in UNIT_MS:
            raise ValueError(f"periodic unit '{unit}' is not one of {', '.join(UNIT_MS)}")
        if interval < 1:
            raise ValueError(f"periodic interval must be at least 1, got {interval}")
        return PeriodicSpec(interval * UNIT_MS[unit])


def _aware(ms: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ms // 1000, zone)  # fires are whole seconds: flooring loses nothing


def _ms(when: datetime) -> int:
    return int(when.timestamp()) * 1000


def cron_slots_after(spec: CronSpec, after_ms: int) -> Iterator[int]:
    """The schedule's slots strictly after ``after_ms``, in order (ends after the year 2099)."""
    current: datetime | None = _aware(after_ms, spec.zone)
    while current is not None:
        current = cron.next_fire(spec.expression, current, spec.zone)
        if current is not None:
            yield _ms(current)


def due_slots(
    spec: CronSpec | PeriodicSpec, anchor: int, after_ms: int, now: int, limit: int = 1000
) -> list[int]:
    """The first ``limit`` slots in (after_ms, now]; ``anchor`` is a periodic trigger's origin."""
    found: list[int] = []
    if isinstance(spec, PeriodicSpec):
        k = max(1, (after_ms - anchor) // spec.interval_ms + 1)
        while len(found) < limit and anchor + k * spec.interval_ms <= now:
            found.append(anchor + k * spec.interval_ms)
            k += 1
        return found
    for slot in cron_slots_after(spec, after_ms):
        if slot > now or len(found) >= limit:
            break
        found.append(slot)
    return found


def latest_cron_slot(spec: CronSpec, after_ms: int, now: int) -> int | None:
    """The latest slot in (after_ms, now], without walking every slot since ``after_ms``."""
    if now <= after_ms:
        return None
    for window in _WINDOWS_MS:
        start = max(after_ms, now - window)
        latest = None
        for slot in cron_slots_after(spec, start):
            if slot > now:
                break
            latest = slot
        if latest is not None or start == after_ms:
            return latest
    return None


def latest_periodic_slot(spec: PeriodicSpec, anchor: int, after_ms: int, now: int) -> int | None:
    """The latest slot ``anchor + k * interval`` (k >= 1) in (after_ms, now]."""
    k = (now - anchor) // spec.interval_ms
    slot = anchor + k * spec.interval_ms
    return slot if k >= 1 and slot > after_ms else None


def next_periodic_slots(spec: PeriodicSpec, anchor: int, after_ms: int, n: int) -> list[int]:
    """The next ``n`` slots strictly after ``after_ms``."""
    k = max(1, (after_ms - anchor) // spec.interval_ms + 1)
    return [anchor + (k + i) * spec.interval_ms for i in range(n)]


@dataclass(frozen=True)
class SlotState:
    """A time trigger's cursor: ``cursor`` (slots up to it are dealt with), ``anchor`` (periodic origin),
    ``last_fire`` (tick time of its last run, 0 for none) and ``last_slot`` (the slot that run was for)."""

    cursor: int
    anchor: int
    last_fire: int = 0
    last_slot: int = 0

    @staticmethod
    def start(now: int, previous: SlotState | None = None) -> SlotState:
        """A new or changed trigger: nothing before ``now`` fires; the 10 s spacing carries over."""
        last_fire = previous.last_fire if previous else 0
        last_slot = previous.last_slot if previous else 0
        return SlotState(cursor=now, anchor=now, last_fire=last_fire, last_slot=last_slot)

    def to_json(self) -> dict[str, int]:
        return {
            "cursor": self.cursor,
            "anchor": self.anchor,
            "last_fire": self.last_fire,
            "last_slot": self.last_slot,
        }

    @staticmethod
    def from_json(data: dict[str, int]) -> SlotState:
        return SlotState(
            int(data["cursor"]),
            int(data["anchor"]),
            int(data.get("last_fire", 0)),
            int(data.get("last_slot", 0)),
        )


@dataclass(frozen=True)
class Fire:
    """Fire ``slot`` now; ``skipped`` older due slots are dropped (catch-up and spacing policy)."""

    slot: int
    skipped: int
    state: SlotState


def decide(spec: CronSpec | PeriodicSpec, state: SlotState, now: int) -> Fire | None:
    """The slot to fire at ``now``, or None (nothing due, or due but within 10 s of the last run)."""
    if isinstance(spec, PeriodicSpec):
        latest = latest_periodic_slot(spec, state.anchor, state.cursor, now)
    else:
        latest = latest_cron_slot(spec, state.cursor, now)
    if latest is None or now < state.last_fire + MIN_GAP_MS:
        return None
    skipped = len(due_slots(spec, state.anchor, state.cursor, latest - 1, limit=10_000))
    return Fire(latest, skipped, SlotState(latest, state.anchor, now, latest))


def next_fire_times(spec: CronSpec | PeriodicSpec, anchor: int, after_ms: int, n: int) -> list[int]:
    """The next ``n`` slots after ``after_ms`` (for ``sluice jobs next-runs``)."""
    if isinstance(spec, PeriodicSpec):
        return next_periodic_slots(spec, anchor, after_ms, n)
    found: list[int] = []
    for slot in cron_slots_after(spec, after_ms):
        if len(found) >= n:
            break
        found.append(slot)
    return found


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
