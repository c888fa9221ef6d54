"""Pure timing of event triggers (file arrival, table update): debounce and minimum spacing.

An event trigger has *pending* changes once it saw a new file or a new table version after its last run.
It fires when, at ``now``:

* ``now >= last_change + wait_after_last_change_seconds`` (debounce: every new change restarts the wait),
* ``now >= last_fire + min_time_between_triggers_seconds`` (spacing between runs of the trigger).

Both timers default to 0 when the setting is absent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Timers:
    """The trigger's two settings, in milliseconds."""

    min_between_ms: int = 0
    wait_after_ms: int = 0

    @staticmethod
    def of(settings: dict[str, Any]) -> Timers:
        return Timers(
            int(settings.get("min_time_between_triggers_seconds") or 0) * 1000,
            int(settings.get("wait_after_last_change_seconds") or 0) * 1000,
        )


@dataclass(frozen=True)
class EventState:
    """``pending``: changes not yet acted on; ``last_change``: when the newest was seen; ``last_fire``: the
    tick time of the last run (0: none)."""

    pending: bool = False
    last_change: int = 0
    last_fire: int = 0

    def changed(self, now: int) -> EventState:
        return replace(self, pending=True, last_change=now)

    def fired(self, now: int) -> EventState:
        return replace(self, pending=False, last_fire=now)

    def to_json(self) -> dict[str, Any]:
        return {"pending": self.pending, "last_change": self.last_change, "last_fire": self.last_fire}

    @staticmethod
    def from_json(data: dict[str, Any]) -> EventState:
        return EventState(
            bool(data.get("pending", False)), int(data.get("last_change", 0)), int(data.get("last_fire", 0))
        )


def ready(state: EventState, timers: Timers, now: int) -> bool:
    """Whether the pending changes fire now."""
    return (
        state.pending
        and now >= state.last_change + timers.wait_after_ms
        and now >= state.last_fire + timers.min_between_ms
    )


def ready_at(state: EventState, timers: Timers) -> int | None:
    """The earliest time the pending changes can fire (None: nothing pending)."""
    if not state.pending:
        return None
    return max(state.last_change + timers.wait_after_ms, state.last_fire + timers.min_between_ms)
