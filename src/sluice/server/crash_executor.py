"""TEST HOOK: the local executor with the ``task.*`` crash points (see ``sluice.crashpoints``)."""

from __future__ import annotations

from sluice.crashpoints import ARMED, ENV, TASK_POINTS, crash_point, log
from sluice.executors import Exited, LaunchSpec
from sluice.executors.local import LocalExecutor


class CrashingExecutor(LocalExecutor):
    """TEST HOOK: the local executor with the ``task.*`` crash points around launch and exit."""

    def launch(self, spec: LaunchSpec) -> int:
        crash_point("task.running_committed")
        pid = super().launch(spec)
        crash_point("task.launched")
        return pid

    def poll(self, timeout: float = 0.0) -> list[Exited]:
        exits = super().poll(timeout)
        if exits:
            crash_point("task.exited")
        return exits


def armed_executor() -> LocalExecutor | None:
    """The executor ``sluice serve`` needs for the armed points (None: the default one)."""
    if ARMED & TASK_POINTS:
        log.warning("%s=%s: crash points armed (a test hook)", ENV, ",".join(sorted(ARMED)))
        return CrashingExecutor()
    return None
