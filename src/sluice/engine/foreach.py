"""``for_each_task``: one nested task run per input element, at most ``concurrency`` at once.

Each iteration is a task run of its own (``parent_task_run_id`` = the for-each task's run, ``iteration`` =
its index) with its own attempts and the nested task's retry policy; ``{{input}}`` and ``{{input.<field>}}``
resolve to its element. The for-each task succeeds when every iteration does, and fails when one fails for
good. Limits (Databricks'): inline inputs at most 10,000 characters, referenced ones at most 48 KiB.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice.engine.plan import TaskPlan
from sluice.engine.runstate import Attempt
from sluice.errors import SluiceError
from sluice.states import ResultState

INLINE_LIMIT = 10_000
REFERENCED_LIMIT = 48 * 1024

SUCCEEDED = frozenset({ResultState.SUCCESS, ResultState.EXCLUDED, ResultState.SUCCESS_WITH_FAILURES})


class ForEachError(SluiceError):
    """Inputs that are not a JSON array, or too large."""


def parse_inputs(raw: str, resolved: str) -> list[Any]:
    """The iteration inputs: ``raw`` as written, ``resolved`` after its references were substituted."""
    referenced = "{{" in raw
    limit = REFERENCED_LIMIT if referenced else INLINE_LIMIT
    size = len(resolved.encode()) if referenced else len(resolved)
    if size > limit:
        unit = "bytes" if referenced else "characters"
        raise ForEachError(f"for_each_task inputs are {size} {unit}, over the limit of {limit} {unit}")
    try:
        value = json.loads(resolved)
    except ValueError:
        raise ForEachError(f"for_each_task inputs must be a JSON array, got {resolved[:200]!r}") from None
    if not isinstance(value, list):
        raise ForEachError(f"for_each_task inputs must be a JSON array, got {type(value).__name__}")
    return value


@dataclass
class ForEachState:
    """A running for-each task: its iterations' latest attempts and results."""

    key: str
    task_run_id: int
    nested: TaskPlan
    concurrency: int
    inputs: list[Any]
    attempts: dict[int, Attempt] = field(default_factory=dict)
    results: dict[int, ResultState] = field(default_factory=dict)
    next_index: int = 0
    active: int = 0

    @staticmethod
    def of(key: str, task_run_id: int, payload: Mapping[str, Any], inputs: list[Any]) -> ForEachState:
        return ForEachState(
            key=key,
            task_run_id=task_run_id,
            nested=TaskPlan.of(payload["task"]),
            concurrency=max(1, int(payload.get("concurrency") or 1)),
            inputs=inputs,
        )

    def take_next(self) -> int | None:
        """The next iteration to start, if the concurrency allows one (kept iterations are skipped)."""
        while self.next_index in self.results:
            self.next_index += 1
        if self.active >= self.concurrency or self.next_index >= len(self.inputs):
            return None
        index = self.next_index
        self.next_index += 1
        self.active += 1
        return index

    @property
    def done(self) -> bool:
        return len(self.results) == len(self.inputs)

    def result(self) -> tuple[ResultState, str]:
        failed = [i for i, r in self.results.items() if r not in SUCCEEDED]
        if not failed:
            return ResultState.SUCCESS, ""
        if all(self.results[i] is ResultState.CANCELED for i in failed):
            return ResultState.CANCELED, f"{len(failed)} of {len(self.inputs)} iterations were canceled"
        shown = ", ".join(str(i) for i in sorted(failed)[:10])
        return (
            ResultState.FAILED,
            f"{len(failed)} of {len(self.inputs)} iterations failed (iterations {shown})",
        )


def stats(iterations: list[tuple[str, str | None]]) -> dict[str, Any]:
    """``for_each_task.stats`` from each iteration's latest (life_cycle_state, result_state)."""
    total = len(iterations)
    completed = sum(1 for _, result in iterations if result is not None)
    succeeded = sum(1 for _, result in iterations if result is not None and ResultState(result) in SUCCEEDED)
    active = sum(
        1 for state, result in iterations if result is None and state in ("RUNNING", "WAITING_FOR_RETRY")
    )
    return {
        "task_run_stats": {
            "total_iterations": total,
            "scheduled_iterations": sum(1 for state, _ in iterations if state != "BLOCKED"),
            "active_iterations": active,
            "completed_iterations": completed,
            "succeeded_iterations": succeeded,
            "failed_iterations": completed - succeeded,
        }
    }
