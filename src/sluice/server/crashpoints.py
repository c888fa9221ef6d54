"""TEST HOOK: crash points, where ``sluice serve`` can ``kill -9`` itself at a named step.

Set ``SLUICE_CRASH_AT=<name>[,<name>...]`` in the server's environment and the server SIGKILLs itself the
first time it reaches one of those steps; the crash-point tests (tests/e2e/test_serve_crash_points.py)
then restart it without the variable and check that nothing is stuck, lost or done twice beyond the
written policy (docs/guide/server.md, "Crash safety"). The variable is read once, when this module is
imported; an unarmed check is one ``in`` on an empty frozenset. Never set it in production.

The named steps (what is committed when the process dies):

- ``scheduler.slot_uncommitted``: a slot's run is created inside the firing transaction, not committed;
- ``scheduler.slot_committed``: a slot, its run and the trigger's cursor committed, nobody claimed the run;
- ``orchestrator.run_claimed``: a run claimed by this server (its driver), no task of it started;
- ``task.running_committed``: a task attempt committed RUNNING, its process not launched;
- ``task.launched``: a task process launched and running;
- ``task.exited``: a task process exited, its result not yet recorded.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

from sluice.errors import InvalidRequestError

if TYPE_CHECKING:
    from sluice.executors.local import LocalExecutor

log = logging.getLogger("sluice.server")

ENV = "SLUICE_CRASH_AT"

POINTS = frozenset(
    {
        "scheduler.slot_uncommitted",
        "scheduler.slot_committed",
        "orchestrator.run_claimed",
        "task.running_committed",
        "task.launched",
        "task.exited",
    }
)
#: The executor's points: with one of them armed, the server uses :class:`CrashingExecutor`.
TASK_POINTS = frozenset({"task.running_committed", "task.launched", "task.exited"})


def _read() -> frozenset[str]:
    return frozenset(n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip())


#: The armed points, read once at start.
ARMED: frozenset[str] = _read()


def check() -> None:
    """Refuse unknown names (``sluice serve`` calls this at start: a typo must not silently test nothing)."""
    unknown = ARMED - POINTS
    if unknown:
        raise InvalidRequestError(
            f"{ENV} names unknown crash points {sorted(unknown)}; known: {', '.join(sorted(POINTS))}"
        )


def crash_point(name: str) -> None:
    """TEST HOOK: die by SIGKILL here if ``name`` is armed (see the module docstring)."""
    if name in ARMED:
        _die(name)


def _die(name: str) -> None:
    sys.stderr.write(f"{ENV}: crash point {name} reached, killing this process (SIGKILL)\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def executor() -> LocalExecutor | None:
    """The executor ``sluice serve`` needs for the armed points (None: the default one)."""
    if ARMED & TASK_POINTS:
        from sluice.server.crash_executor import CrashingExecutor

        log.warning("%s=%s: crash points armed (a test hook)", ENV, ",".join(sorted(ARMED)))
        return CrashingExecutor()
    return None
