"""The notifier: derives events from the store into a durable outbox, then delivers them with retries.

``tick(now)`` is one loop step, for ``sluice serve``'s orchestrator and for ``sluice run``'s background
thread (``sluice.notify.local``):

1. **Record.** Read runs that are active or ended since the scan watermark (minus ``rescan_ms``), and their
   task runs that started, ended or run; derive the notices (``sluice.notify.events``); insert one outbox row
   per (run or task run, event, destination) with ``ON CONFLICT DO NOTHING`` on its key; move the watermark.
   One transaction: the events are committed before anything is sent (DESIGN decision 2).
2. **Dispatch.** Claim due rows (compare-and-set on the attempt count, with a lease; committed) and hand
   them to worker threads, which send and record each attempt's outcome. ``tick`` never waits on the
   network: a slow or dead SMTP server or webhook cannot stall the loop that calls it.

Delivery is at-least-once: a process killed after a claim and before recording the outcome leaves the row
leased; when the lease expires any notifier sends it again (ADR 0009). Messages carry the outbox key
(email Message-ID, webhook ``Idempotency-Key`` header and ``notification_id``) so receivers can deduplicate.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sluice.engine.clock import Clock, now_ms
from sluice.errors import NotFoundError
from sluice.notify import events
from sluice.notify.errors import DeliveryError
from sluice.notify.settings import NotifySettings
from sluice.store import Store
from sluice.store import notifications as outbox
from sluice.store.notifications import NotificationRecord
from sluice.store.records import RunRecord, TaskRunRecord

log = logging.getLogger("sluice.notify")

#: The scan watermark's name in ``notification_cursors``.
CURSOR = "scan"
#: Keys remembered as recorded, so steady re-scans skip the insert (cleared when it grows past this).
_RECORDED_CACHE = 50_000


@dataclass(frozen=True)
class TickResult:
    #: New outbox rows.
    recorded: int
    #: Deliveries claimed this tick (sent inline, or handed to the workers).
    dispatched: int


class Notifier:
    """Notifications of the runs in ``store``; see the module docstring. ``close()`` stops the workers."""

    #: Its name among the services of ``sluice serve``.
    name = "notifier"

    def __init__(
        self, store: Store, settings: NotifySettings | None = None, *, clock: Clock = now_ms
    ) -> None:
        self.store = store
        self.settings = settings or NotifySettings()
        self.clock = clock
        self._recorded: set[str] = set()
        self._inflight: set[str] = set()
        self._lock = threading.Lock()
        self._queue: queue.Queue[NotificationRecord | None] = queue.Queue()
        self._workers = [
            threading.Thread(target=self._work, name=f"sluice-notify-{i}", daemon=True)
            for i in range(max(0, self.settings.workers))
        ]
        for worker in self._workers:
            worker.start()

    # ------------------------------------------------------------------ the loop step

    def tick(self, now: int) -> TickResult:
        """Record new events, then start due deliveries. Never raises: problems are logged."""
        try:
            recorded = self.record(now)
        except Exception:  # the caller's loop must go on; the next tick retries the scan
            log.exception("notifier: scanning runs for notifications failed")
            recorded = 0
        try:
            dispatched = self.dispatch(now)
        except Exception:
            log.exception("notifier: starting deliveries failed")
            dispatched = 0
        return TickResult(recorded, dispatched)

    def record(self, now: int) -> int:
        """Derive events from the store and commit the new ones to the outbox; how many were new."""
        cursor = outbox.get_cursor(self.store, CURSOR)
        floor = now - self.settings.max_backfill_ms
        since = (
            now - self.settings.rescan_ms if cursor is None else max(floor, cursor - self.settings.rescan_ms)
        )
        runs = outbox.runs_to_scan(self.store, ended_since=since)
        task_runs = outbox.task_runs_to_scan(self.store, [r.run_id for r in runs], since=since)
        notes = [n for n in self._notes(runs, task_runs, now) if n.notification_key not in self._recorded]
        with self.store.transaction():
            new = outbox.record_notifications(self.store, notes)
            outbox.advance_cursor(self.store, CURSOR, now)
        if len(self._recorded) > _RECORDED_CACHE:
            self._recorded.clear()
        self._recorded.update(n.notification_key for n in notes)
        return new

    def _notes(
        self, runs: Sequence[RunRecord], task_runs: Sequence[TaskRunRecord], now: int
    ) -> list[NotificationRecord]:
        by_run: dict[int, list[TaskRunRecord]] = {}
        for tr in task_runs:
            by_run.setdefault(tr.job_run_id, []).append(tr)
        failed = [
            tr.job_run_id for tr in task_runs if events.outcome_of(tr.state, tr.result_state) == "failure"
        ]
        retried = outbox.retried_attempts(self.store, sorted(set(failed))) if failed else set()
        notices: list[events.Notice] = []
        for run in runs:
            notices += events.job_notices(run, now=now, repair_start=self._repair_start(run.run_id))
            notices += events.task_notices(run, by_run.get(run.run_id, []), now=now, retried=retried)
        return [note for notice in notices for note in _expand(notice, now)]

    def _repair_start(self, run_id: int) -> Callable[[], int]:
        return lambda: outbox.latest_repair_start(self.store, run_id)

    def dispatch(self, now: int) -> int:
        """Claim due notifications: send them here (``workers=0``) or hand them to the worker threads."""
        inline = not self._workers
        with self._lock:
            room = 16 if inline else max(0, 4 * len(self._workers) - len(self._inflight))
        if room == 0:
            return 0
        claimed = 0
        for note in outbox.due_notifications(self.store, now=now, limit=room):
            with self._lock:
                if note.notification_key in self._inflight:
                    continue
            if not outbox.claim(self.store, note, now=now, lease_until=now + self.settings.lease_ms):
                continue  # another notifier took it
            claimed += 1
            if inline:
                self.deliver(note)
            else:
                with self._lock:
                    self._inflight.add(note.notification_key)
                self._queue.put(note)
        return claimed

    # ------------------------------------------------------------------ delivering

    def deliver(self, note: NotificationRecord) -> None:
        """One attempt of a claimed notification, its outcome recorded (a bad destination never raises)."""
        attempt = note.attempts + 1
        start = self.clock()
        error: str | None = None
        permanent = False
        try:
            self._send(note)
        except DeliveryError as exc:
            error, permanent = str(exc), exc.permanent
        except Exception as exc:  # a bug in rendering must not kill the worker; record it, retry by policy
            log.exception("notifier: sending %s failed unexpectedly", note.notification_key)
            error = f"unexpected error: {exc!r}"
        end = self.clock()
        if error is None:
            state, next_time = outbox.SENT, 0
        elif permanent or attempt >= self.settings.max_attempts:
            state, next_time = outbox.FAILED, 0
            log.warning(
                "notifier: gave up on %s after %d attempt(s): %s", note.notification_key, attempt, error
            )
        else:
            state, next_time = outbox.PENDING, end + self.settings.backoff_ms(attempt)
        outbox.finish_attempt(
            self.store,
            note.notification_key,
            attempt_number=attempt,
            start_time=start,
            end_time=end,
            error=error,
            state=state,
            next_attempt_time=next_time,
        )

    def _send(self, note: NotificationRecord) -> None:
        # Imported on first delivery: smtplib, email and urllib cost ~40 ms that runs without any
        # notification (most `sluice run`s) should not pay.
        from sluice.notify.email import send_email
        from sluice.notify.webhooks import post_webhook

        if note.channel == "email":
            send_email(note.facts, to=note.destination, key=note.notification_key, settings=self.settings)
            return
        try:
            destination = outbox.get_destination(self.store, note.destination)
        except NotFoundError:
            raise DeliveryError(
                f"notification destination '{note.destination}' does not exist (deleted?); "
                "create one with `sluice destinations create` and reference its id",
                permanent=True,
            ) from None
        post_webhook(destination, note.facts, key=note.notification_key, settings=self.settings)

    def _work(self) -> None:
        while True:
            note = self._queue.get()
            if note is None:
                return
            try:
                self.deliver(note)
            except Exception:  # recording the outcome failed: the lease makes it due again
                log.exception("notifier: recording the delivery of %s failed", note.notification_key)
            finally:
                with self._lock:
                    self._inflight.discard(note.notification_key)

    # ------------------------------------------------------------------ ending

    def busy(self) -> bool:
        """Whether deliveries handed to the workers are still going."""
        with self._lock:
            return bool(self._inflight)

    def flush(self, timeout_s: float) -> int:
        """Tick until every notification is sent or given up, or ``timeout_s`` passed; how many remain."""
        deadline = time.monotonic() + timeout_s
        while True:
            now = self.clock()
            self.tick(now)
            pending = outbox.count_pending(self.store)
            if (pending == 0 and not self.busy()) or time.monotonic() >= deadline:
                return pending
            due = outbox.next_due_time(self.store)
            wait_ms = 50 if due is None else min(max(due - self.clock(), 10), 250)
            time.sleep(min(wait_ms / 1000, max(0.0, deadline - time.monotonic())))

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the workers after their current delivery (at most ``timeout_s`` in all)."""
        for _ in self._workers:
            self._queue.put(None)
        deadline = time.monotonic() + timeout_s
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self._workers = []


def _expand(notice: events.Notice, now: int) -> list[NotificationRecord]:
    """One outbox row per destination of ``notice``."""
    targets = [("email", e) for e in dict.fromkeys(notice.recipients.emails)]
    targets += [("webhook", w) for w in dict.fromkeys(notice.recipients.webhooks)]
    facts = notice.facts
    return [
        NotificationRecord(
            notification_key=f"{notice.subject}:{notice.event.value}:{channel}:{destination}",
            job_run_id=int(facts["run_id"]),
            task_run_id=facts.get("task_run_id"),
            event=notice.event.value,
            channel=channel,
            destination=destination,
            facts=facts,
            state=outbox.PENDING,
            attempts=0,
            next_attempt_time=now,
            created_time=now,
        )
        for channel, destination in targets
    ]
