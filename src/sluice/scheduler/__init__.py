"""The scheduler: schedules, periodic, file-arrival, table-update and continuous triggers -> runs.

``Scheduler(store).tick(now_ms)`` is the service the server's orchestrator calls; the decisions inside are
pure functions of ``now`` (``slots``, ``events``, ``continuous``, ``table_update``).
"""

from __future__ import annotations

from sluice.scheduler.loop import Scheduler
from sluice.scheduler.table_update import CatalogTableVersions, DeltaLogVersions

__all__ = ["CatalogTableVersions", "DeltaLogVersions", "Scheduler"]
