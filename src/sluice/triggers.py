"""A job's trigger in words, with the next fire time of a cron schedule or periodic trigger: for the Jobs UI
and ``jobs list``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluice.store import Store
    from sluice.store.records import JobRecord

__all__ = ["periodic_anchor", "trigger_words"]


def trigger_words(
    settings: Mapping[str, Any], now: int, anchor: int | None = None, *, estimate: bool = True
) -> tuple[str, str, bool | None]:
    """``(words, next fire time, paused)`` of a job's trigger; ('Manual', '', None) without one.

    Cron schedules and periodic triggers have a next fire time (none while paused); ``anchor`` is a periodic
    trigger's origin as the scheduler keeps it (:func:`periodic_anchor`; None: not seen yet, so its first
    slot is one interval from ``now``; with ``estimate=False``, no next time, for callers that cannot know
    the anchor, such as the CLI against a remote server). Event triggers (file arrival, table update,
    continuous) are described in words, with their spacing settings.
    """
    schedule = settings.get("schedule")
    if isinstance(schedule, dict):
        expr, zone = str(schedule.get("quartz_cron_expression", "")), str(schedule.get("timezone_id", "UTC"))
        paused = schedule.get("pause_status") == "PAUSED"
        return f"Cron {expr} ({zone})", "" if paused else _next_cron(expr, zone, now), paused
    if isinstance(settings.get("continuous"), dict):
        paused = settings["continuous"].get("pause_status") == "PAUSED"
        return "Continuous: a new run starts as soon as the last one ends", "", paused
    trigger = settings.get("trigger")
    if isinstance(trigger, dict):
        paused = trigger.get("pause_status") == "PAUSED"
        if isinstance(trigger.get("periodic"), dict):
            p = trigger["periodic"]
            unit = str(p.get("unit", "")).lower()
            every = f"Every {unit[:-1]}" if p.get("interval") == 1 else f"Every {p.get('interval')} {unit}"
            known = anchor is not None or estimate
            return every, "" if paused or not known else _next_periodic(p, now, anchor), paused
        if isinstance(trigger.get("file_arrival"), dict):
            f = trigger["file_arrival"]
            return f"When new files arrive in {f.get('url')}{_spacing(f)}", "", paused
        if isinstance(trigger.get("table_update"), dict):
            t = trigger["table_update"]
            names = [str(n) for n in t.get("table_names") or ()]
            if len(names) == 1:
                words = f"When table {names[0]} is updated"
            elif t.get("condition") == "ALL_UPDATED":
                words = f"When all of the tables {', '.join(names)} have been updated"
            else:
                words = f"When any of the tables {', '.join(names)} is updated"
            return words + _spacing(t), "", paused
    return "Manual", "", None


def _spacing(settings: Mapping[str, Any]) -> str:
    """``min_time_between_triggers_seconds`` and ``wait_after_last_change_seconds`` in words."""
    parts = []
    wait = settings.get("wait_after_last_change_seconds")
    if wait:
        parts.append(f"once nothing has changed for {_seconds(int(wait))}")
    gap = settings.get("min_time_between_triggers_seconds")
    if gap:
        parts.append(f"at most once every {_seconds(int(gap))}")
    return f" ({', '.join(parts)})" if parts else ""


def _seconds(n: int) -> str:
    if n % 3600 == 0:
        return f"{n // 3600} h"
    if n % 60 == 0:
        return f"{n // 60} min"
    return f"{n} s"


def _next_periodic(periodic: Mapping[str, Any], now: int, anchor: int | None) -> str:
    from sluice.scheduler import slots

    try:
        spec = slots.PeriodicSpec.of(int(periodic["interval"]), str(periodic["unit"]))
    except (KeyError, TypeError, ValueError):
        return ""
    origin = now if anchor is None else anchor
    fire = slots.next_fire_times(spec, origin, max(now, origin), 1)[0]
    return datetime.fromtimestamp(fire / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def periodic_anchor(store: Store, job: JobRecord) -> int | None:
    """The origin of a job's periodic trigger as the scheduler keeps it (its slots are ``anchor + k *
    interval``); None when the job has none, or the scheduler has not seen its current settings yet."""
    from sluice.scheduler.loop import watched
    from sluice.store import scheduler as rows

    periodic = (job.settings.get("trigger") or {}).get("periodic")
    if not isinstance(periodic, dict):
        return None
    row = rows.get_trigger(store, job.job_id, "periodic")
    current = watched(job)
    if row is None or current is None or row.config != current.config or "anchor" not in row.state:
        return None
    return int(row.state["anchor"])


def _next_cron(expression: str, zone: str, now: int) -> str:
    from sluice import cron

    try:
        tz = cron.resolve_timezone(zone)
        fire = cron.next_fire(cron.parse(expression), datetime.fromtimestamp(now / 1000, tz), tz)
    except (cron.CronError, ValueError):
        return ""
    return fire.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if fire else ""
