"""Showing a run as it progresses: a live table on a terminal, nothing extra elsewhere."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from sluice.states import LifeCycleState, ResultState

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

    from sluice.engine.runstate import RunState

_STYLE = {
    ResultState.SUCCESS: "green",
    ResultState.SUCCESS_WITH_FAILURES: "yellow",
    ResultState.FAILED: "red",
    ResultState.TIMEDOUT: "red",
    ResultState.CANCELED: "magenta",
    ResultState.UPSTREAM_FAILED: "red dim",
    ResultState.UPSTREAM_CANCELED: "magenta dim",
    ResultState.EXCLUDED: "dim",
    ResultState.DISABLED: "dim",
}


def _duration(start: int, end: int, now: int) -> str:
    if not start:
        return ""
    ms = (end or now) - start
    return f"{ms / 1000:.1f}s" if ms < 60_000 else f"{ms // 60_000}m{(ms // 1000) % 60:02d}s"


def task_table(state: RunState, now: int) -> Table:
    from rich.table import Table

    title = f"{state.plan.name} — run {state.run_id}"
    if state.result is not None:
        title += f": [bold {_STYLE.get(state.result, '')}]{state.result.value}[/]"
    table = Table(title=title, title_justify="left", expand=False)
    for column in ("task", "state", "attempt", "duration", "message"):
        table.add_column(column)
    for key in state.graph.order:
        attempt = state.attempts[key]
        res = state.results.get(key)
        if res is not None:
            shown = f"[{_STYLE.get(res.result, '')}]{res.result.value}[/]"
        elif attempt.state == LifeCycleState.RUNNING:
            shown = "[cyan]RUNNING[/]"
        else:
            shown = attempt.state.value
        end = now if res is None else (state.end_times.get(key) or now)
        table.add_row(
            key,
            shown,
            str(attempt.attempt_number),
            _duration(attempt.start_time, end, now),
            state.messages.get(key, "")[:80],
        )
    return table


class LiveProgress:
    """A rich Live table of the run's tasks, redrawn ten times a second while the driver works.

    The table is rebuilt on every redraw (running durations tick); it gives way to the run's summary at
    the end (``transient``).
    """

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        self.console = Console(stderr=True)
        self._state: RunState | None = None
        self._last: Table | Text = Text("starting ...")
        self._live = Live(
            console=self.console, refresh_per_second=10, transient=True, get_renderable=self._render
        )

    def _render(self) -> Table | Text:
        """Called from rich's refresh thread: the driver may be changing the state meanwhile."""
        from sluice.engine.clock import now_ms

        if self._state is not None:
            with contextlib.suppress(RuntimeError):  # a dict changed size mid-read: keep the last frame
                self._last = task_table(self._state, now_ms())
        return self._last

    def __enter__(self) -> LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.__exit__(*exc)

    def __call__(self, state: RunState) -> None:
        self._state = state
