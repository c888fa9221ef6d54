"""Pure decisions of ``continuous`` jobs: one active run, the next when it ends, backoff on failure.

A continuous job (``continuous.pause_status`` UNPAUSED) always has one run: when it ends the scheduler
starts the next one (trigger ``CONTINUOUS``). Consecutive failed runs back off exponentially before the
next start, counted from the end of the failed run:

    failures in a row   1     2     3     4      5      6      7       8       9+
    delay before next   10 s  20 s  40 s  80 s   160 s  320 s  640 s   1280 s  1800 s (30 min, the cap)

A successful run (SUCCESS, SUCCESS_WITH_FAILURES) resets the count; a CANCELED run neither counts nor
resets (cancelling a run of a continuous job restarts it, as on Databricks; pause the job to stop it).
Every other end (FAILED, TIMEDOUT, INTERNAL_ERROR, a SKIPPED run) counts as a failure. Starts are also
at least ``MIN_GAP_MS`` (10 s) apart, so a job that ends at once does not spin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluice.scheduler.slots import MIN_GAP_MS
from sluice.states import ResultState

#: First backoff delay, growth factor and cap (milliseconds).
BACKOFF_BASE_MS = 10_000
BACKOFF_FACTOR = 2
BACKOFF_CAP_MS = 30 * 60_000

_SUCCESS = frozenset({ResultState.SUCCESS.value, ResultState.SUCCESS_WITH_FAILURES.value})
_NEUTRAL = frozenset({ResultState.CANCELED.value})


def backoff_ms(failures: int) -> int:
    """Delay before the next start after ``failures`` failed runs in a row (0 for none)."""
    if failures <= 0:
        return 0
    delay: int = BACKOFF_BASE_MS * BACKOFF_FACTOR ** min(failures - 1, 32)
    return min(BACKOFF_CAP_MS, delay)


def failures_after(failures: int, result_state: str | None) -> int:
    """The consecutive-failure count once a run ended with ``result_state``."""
    if result_state in _SUCCESS:
        return 0
    if result_state in _NEUTRAL:
        return failures
    return failures + 1


@dataclass(frozen=True)
class ContinuousState:
    """``run_id``: the run this trigger started last (None: none yet); ``failures`` in a row before it;
    ``last_start``: when it was started (tick time)."""

    run_id: int | None = None
    failures: int = 0
    last_start: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "failures": self.failures, "last_start": self.last_start}

    @staticmethod
    def from_json(data: dict[str, Any]) -> ContinuousState:
        run_id = data.get("run_id")
        return ContinuousState(
            None if run_id is None else int(run_id),
            int(data.get("failures", 0)),
            int(data.get("last_start", 0)),
        )


@dataclass(frozen=True)
class LastRun:
    """What the decision needs of the trigger's last run: ended or not, how, and when."""

    terminal: bool
    result_state: str | None
    end_time: int


def start_at(state: ContinuousState, last: LastRun | None) -> tuple[int, int] | None:
    """When the next run may start and the failure count it starts with; None while a run is active."""
    if state.run_id is None or last is None:  # nothing started yet, or its run was deleted
        return state.last_start + MIN_GAP_MS if state.last_start else 0, state.failures
    if not last.terminal:
        return None
    failures = failures_after(state.failures, last.result_state)
    return max(last.end_time + backoff_ms(failures), state.last_start + MIN_GAP_MS), failures
