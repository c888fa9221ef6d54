"""Notifications during ``sluice run``: a notifier ticking in a background thread beside the driver.

The driver is not touched: the notifier reads what the driver commits, so start, end and duration-warning
events go out while the run goes on (within ``interval_s``). When the block ends, a last tick records the
final events and the remaining deliveries get up to ``flush_timeout_s``; what is still pending then (a
destination in backoff) stays in the outbox for the next ``sluice run`` or ``sluice serve`` to deliver.

    with notifying(store, NotifySettings.from_env()):
        runner.driver.run_until_done()
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sluice.notify.notifier import Notifier
from sluice.notify.settings import NotifySettings
from sluice.store import Store

log = logging.getLogger("sluice.notify")


class NotifierThread:
    """Calls ``notifier.tick(clock())`` every ``interval_s`` until stopped."""

    def __init__(self, notifier: Notifier, *, interval_s: float) -> None:
        self.notifier = notifier
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sluice-notifier", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.notifier.tick(self.notifier.clock())
            self._stop.wait(self.interval_s)


@contextmanager
def notifying(
    store: Store,
    settings: NotifySettings | None = None,
    *,
    interval_s: float = 0.5,
    flush_timeout_s: float = 15.0,
) -> Iterator[Notifier]:
    """Deliver notifications of the runs in ``store`` while the block runs, and flush them at its end."""
    notifier = Notifier(store, settings)
    ticker = NotifierThread(notifier, interval_s=interval_s)
    ticker.start()
    try:
        yield notifier
    finally:
        ticker.stop()
        try:
            pending = notifier.flush(flush_timeout_s)
        finally:
            notifier.close()
        if pending:
            print(
                f"{pending} notification(s) not delivered yet (a destination is failing or slow); "
                "the next `sluice run` or `sluice serve` retries them.",
                file=sys.stderr,
            )
