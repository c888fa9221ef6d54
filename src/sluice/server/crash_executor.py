"""TEST HOOK: the local executor with the ``task.*`` crash points (see ``sluice.server.crashpoints``)."""

from __future__ import annotations

from sluice.executors import Exited, LaunchSpec
from sluice.executors.local import LocalExecutor
from sluice.server.crashpoints import crash_point


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
