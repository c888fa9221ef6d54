"""Finding runs whose driver died, so a live driver can take them over.

A run is orphaned when it is not terminal and the process named as its driver is gone (same host: the pid
with its start time no longer exists; another host: no heartbeat for ``HEARTBEAT_STALE_MS``). QUEUED runs are
orphaned the same way: the process waiting to start them died.
"""

from __future__ import annotations

from sluice.engine.identity import driver_alive
from sluice.store import Store
from sluice.store.records import RunRecord


def orphaned_runs(store: Store, *, now: int) -> list[RunRecord]:
    return [
        run
        for run in store.active_runs()
        if not driver_alive(run.driver, heartbeat_time=run.heartbeat_time, now=now)
    ]
