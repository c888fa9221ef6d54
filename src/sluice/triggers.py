"""A job's trigger in words, with the next fire time of a cron schedule: for the Jobs UI and ``jobs list``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["trigger_words"]


def trigger_words(settings: Mapping[str, Any], now: int) -> tuple[str, str, bool | None]:
    """``(words, next fire time, paused)`` of a job's trigger; ('Manual', '', None) without one."""
    schedule = settings.get("schedule")
    if isinstance(schedule, dict):
        expr, zone = str(schedule.get("quartz_cron_expression", "")), str(schedule.get("timezone_id", "UTC"))
        paused = schedule.get("pause_status") == "PAUSED"
        return f"Cron {expr} ({zone})", "" if paused else _next_cron(expr, zone, now), paused
    if isinstance(settings.get("continuous"), dict):
        return "Continuous", "", settings["continuous"].get("pause_status") == "PAUSED"
    trigger = settings.get("trigger")
    if isinstance(trigger, dict):
        paused = trigger.get("pause_status") == "PAUSED"
        if isinstance(trigger.get("periodic"), dict):
            p = trigger["periodic"]
            unit = str(p.get("unit", "")).lower()
            every = f"Every {unit[:-1]}" if p.get("interval") == 1 else f"Every {p.get('interval')} {unit}"
            return every, "", paused
        if isinstance(trigger.get("file_arrival"), dict):
            return f"File arrival at {trigger['file_arrival'].get('url')}", "", paused
        if isinstance(trigger.get("table_update"), dict):
            names = ", ".join(trigger["table_update"].get("table_names") or ())
            return f"Table update of {names}", "", paused
    return "Manual", "", None


def _next_cron(expression: str, zone: str, now: int) -> str:
    from sluice import cron

    try:
        tz = cron.resolve_timezone(zone)
        fire = cron.next_fire(cron.parse(expression), datetime.fromtimestamp(now / 1000, tz), tz)
    except (cron.CronError, ValueError):
        return ""
    return fire.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if fire else ""
