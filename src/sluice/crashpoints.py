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

Fault points are the same idea for errors the process survives: with ``SLUICE_FAULT_AT=<name>[,...]`` the
server raises :class:`InjectedFault` the first time it reaches the step (tests/e2e/test_serve_resilience.py):

- ``driver.task_starting``: while the driver starts a task process of one run (that run fails, the others
  go on; a run-job task waiting for it fails);
- ``orchestrator.turn``: in the orchestrator's loop, outside any run (the loop restarts and adopts its runs).
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from sluice.errors import InvalidRequestError

log = logging.getLogger("sluice.server")

ENV = "SLUICE_CRASH_AT"
FAULT_ENV = "SLUICE_FAULT_AT"

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
FAULT_POINTS = frozenset({"driver.task_starting", "orchestrator.turn"})


class InjectedFault(RuntimeError):
    """TEST HOOK: the error a fault point raises."""


def _read(env: str = ENV) -> frozenset[str]:
    return frozenset(n.strip() for n in os.environ.get(env, "").split(",") if n.strip())


#: The armed points, read once at start.
ARMED: frozenset[str] = _read()
FAULTS_ARMED: frozenset[str] = _read(FAULT_ENV)
_fired: set[str] = set()


def check() -> None:
    """Refuse unknown names (``sluice serve`` calls this at start: a typo must not silently test nothing)."""
    for env, armed, known, kind in (
        (ENV, ARMED, POINTS, "crash"),
        (FAULT_ENV, FAULTS_ARMED, FAULT_POINTS, "fault"),
    ):
        unknown = armed - known
        if unknown:
            raise InvalidRequestError(
                f"{env} names unknown {kind} points {sorted(unknown)}; known: {', '.join(sorted(known))}"
            )
    if ARMED or FAULTS_ARMED:
        log.warning(
            "test hooks armed: %s=%s %s=%s",
            ENV,
            ",".join(sorted(ARMED)),
            FAULT_ENV,
            ",".join(sorted(FAULTS_ARMED)),
        )


def fault_point(name: str) -> None:
    """TEST HOOK: raise :class:`InjectedFault` the first time ``name`` is reached, if it is armed."""
    if name in FAULTS_ARMED and name not in _fired:
        _fired.add(name)
        raise InjectedFault(f"{FAULT_ENV}: fault point {name} reached (a test hook)")


def crash_point(name: str) -> None:
    """TEST HOOK: die by SIGKILL here if ``name`` is armed (see the module docstring)."""
    if name in ARMED:
        _die(name)


def _die(name: str) -> None:
    sys.stderr.write(f"{ENV}: crash point {name} reached, killing this process (SIGKILL)\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
