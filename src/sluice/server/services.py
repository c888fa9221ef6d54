"""Services: periodic work the orchestrator of ``sluice serve`` does between driving runs.

A service is anything with a ``name`` and ``tick(now_ms)`` (what a tick returns is ignored); a
``close()`` method, if it has one, is called when the server stops. The orchestrator calls every registered
service about once a second (``SERVICE_INTERVAL_MS``), from its own thread, one after the other: a tick
must be quick (read and write the store, decide) and hand anything slow (sending mail) to a thread of its
own. A tick that raises is logged and the service is called again next time; it never stops the loop.
Runs a service creates (a scheduler's) are picked up by the orchestrator right after the ticks.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from sluice.store import Store
from sluice.store.tokens import purge_tokens

log = logging.getLogger("sluice.server")

#: How often services are ticked.
SERVICE_INTERVAL_MS = 1_000


@runtime_checkable
class Service(Protocol):
    name: str

    def tick(self, now_ms: int) -> object: ...


class TokenJanitor:
    """Deletes API tokens that expired or were revoked more than ``keep_days`` ago, once an hour."""

    name = "token-janitor"

    def __init__(self, store: Store, *, keep_days: int = 30, every_ms: int = 3_600_000) -> None:
        self.store = store
        self.keep_ms = keep_days * 86_400_000
        self.every_ms = every_ms
        self._next = 0
        self.purged = 0

    def tick(self, now_ms: int) -> None:
        if now_ms < self._next:
            return
        self._next = now_ms + self.every_ms
        purged = purge_tokens(self.store, before=now_ms - self.keep_ms)
        if purged:
            log.info("token-janitor: deleted %d expired or revoked tokens", purged)
        self.purged += purged
