"""The notifier's tables: destinations, the outbox, delivery attempts and scan cursors (migration 0005).

Functions over a ``Store`` (its connection, lock and transactions), in the store's style: portable SQL, times
in epoch milliseconds from the caller. ``sluice.notify`` builds on them; nothing here sends anything.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sluice.errors import NotFoundError
from sluice.store.records import RunRecord, TaskRunRecord
from sluice.store.store import _NOT_TERMINAL, _RUNS, _TASK_RUNS, Store

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode

#: Notification states.
PENDING = "PENDING"
SENT = "SENT"
FAILED = "FAILED"


@dataclass(frozen=True)
class DestinationRecord:
    destination_id: str
    display_name: str
    #: ``slack`` or ``webhook``.
    type: str
    url: str
    created_time: int


@dataclass(frozen=True)
class NotificationRecord:
    notification_key: str
    job_run_id: int
    task_run_id: int | None
    event: str
    #: ``email`` or ``webhook``.
    channel: str
    #: An email address, or a destination id.
    destination: str
    facts: dict[str, Any]
    state: str
    attempts: int
    next_attempt_time: int
    created_time: int
    sent_time: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class AttemptRecord:
    notification_key: str
    attempt_number: int
    start_time: int
    end_time: int
    ok: bool
    error: str | None


_DEST_COLUMNS = "destination_id, display_name, type, url, created_time"
_NOTE_COLUMNS = (
    "notification_key, job_run_id, task_run_id, event, channel, destination, facts, state, attempts, "
    "next_attempt_time, created_time, sent_time, last_error"
)


def _note(row: Sequence[Any]) -> NotificationRecord:
    values = list(row)
    values[6] = json.loads(values[6])
    return NotificationRecord(*values)


# --- destinations ---------------------------------------------------------------------------------------


def create_destination(store: Store, *, type: str, url: str, name: str, now: int) -> DestinationRecord:
    record = DestinationRecord(str(uuid.uuid4()), name, type, url, now)
    store._write(
        f"INSERT INTO notification_destinations ({_DEST_COLUMNS}) "  # noqa: S608 - constant identifiers
        "VALUES (:destination_id, :display_name, :type, :url, :created_time)",
        record.__dict__,
    )
    return record


def get_destination(store: Store, destination_id: str) -> DestinationRecord:
    row = store._one(
        f"SELECT {_DEST_COLUMNS} FROM notification_destinations WHERE destination_id = :id",  # noqa: S608 - constant identifiers
        {"id": destination_id},
    )
    if row is None:
        raise NotFoundError(
            f"Notification destination '{destination_id}' does not exist; "
            "list them with `sluice destinations list`."
        )
    return DestinationRecord(*row)


def list_destinations(store: Store) -> list[DestinationRecord]:
    rows = store._all(
        f"SELECT {_DEST_COLUMNS} FROM notification_destinations ORDER BY created_time, destination_id",  # noqa: S608 - constant identifiers
        {},
    )
    return [DestinationRecord(*row) for row in rows]


def delete_destination(store: Store, destination_id: str) -> None:
    if not store._write(
        "DELETE FROM notification_destinations WHERE destination_id = :id", {"id": destination_id}
    ):
        raise NotFoundError(
            f"Notification destination '{destination_id}' does not exist; "
            "list them with `sluice destinations list`."
        )


# --- scan cursors ---------------------------------------------------------------------------------------


def get_cursor(store: Store, name: str) -> int | None:
    row = store._one("SELECT value FROM notification_cursors WHERE name = :name", {"name": name})
    return None if row is None else int(row[0])


def advance_cursor(store: Store, name: str, value: int) -> None:
    """Set the cursor to ``value`` unless it is already further (several notifiers may share a store)."""
    store._write(
        "INSERT INTO notification_cursors (name, value) VALUES (:name, :value) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value "
        "WHERE notification_cursors.value < excluded.value",
        {"name": name, "value": value},
    )


# --- what the notifier scans ----------------------------------------------------------------------------

#: Runs whose settings mention notifications or a health rule (a cheap filter before decoding JSON).
_MENTIONS = "(settings LIKE '%_notifications%' OR settings LIKE '%RUN_DURATION_SECONDS%')"


def runs_to_scan(store: Store, *, ended_since: int) -> list[RunRecord]:
    """Runs not yet terminal, and runs that ended at or after ``ended_since``, that may notify."""
    rows = store._all(
        f"{_RUNS.select} WHERE {_MENTIONS} AND "
        f"(state IN {_NOT_TERMINAL} OR end_time >= :since) ORDER BY run_id",
        {"since": ended_since},
    )
    return [_RUNS.decode(row) for row in rows]


def task_runs_to_scan(store: Store, job_run_ids: Sequence[int], *, since: int) -> list[TaskRunRecord]:
    """Task runs of ``job_run_ids`` that started or ended at or after ``since``, or are running."""
    if not job_run_ids:
        return []
    rows = store._all(
        f"{_TASK_RUNS.select} WHERE job_run_id {{ids:ids}} AND "
        "(start_time >= :since OR end_time >= :since OR state = 'RUNNING') ORDER BY run_id",
        {"ids": store._db.dialect.ids(job_run_ids), "since": since},
    )
    return [_TASK_RUNS.decode(row) for row in rows]


def retried_attempts(store: Store, job_run_ids: Sequence[int]) -> set[int]:
    """Task run ids (of ``job_run_ids``) that have a next attempt: a retry was created after them."""
    if not job_run_ids:
        return set()
    rows = store._all(
        "SELECT a.run_id FROM task_runs a JOIN task_runs b "
        "ON b.job_run_id = a.job_run_id "
        "AND b.original_attempt_run_id = COALESCE(a.original_attempt_run_id, a.run_id) "
        "AND b.attempt_number = a.attempt_number + 1 "
        "WHERE a.job_run_id {ids:ids}",
        {"ids": store._db.dialect.ids(job_run_ids)},
    )
    return {int(row[0]) for row in rows}


def latest_repair_start(store: Store, run_id: int) -> int:
    row = store._one("SELECT MAX(start_time) FROM repairs WHERE run_id = :run_id", {"run_id": run_id})
    return 0 if row is None or row[0] is None else int(row[0])


# --- the outbox -----------------------------------------------------------------------------------------


def record_notifications(store: Store, notes: Sequence[NotificationRecord]) -> int:
    """Insert the notifications not recorded yet (by key); how many were new."""
    inserted = 0
    for note in notes:
        params = dict(note.__dict__)
        params["facts"] = _dumps(note.facts)
        inserted += store._write(
            f"INSERT INTO notifications ({_NOTE_COLUMNS}) VALUES ("  # noqa: S608 - constant identifiers
            + ", ".join(":" + c.strip() for c in _NOTE_COLUMNS.split(","))
            + ") ON CONFLICT (notification_key) DO NOTHING",
            params,
        )
    return inserted


def due_notifications(store: Store, *, now: int, limit: int) -> list[NotificationRecord]:
    """PENDING notifications whose next attempt is due, oldest due first."""
    rows = store._all(
        f"SELECT {_NOTE_COLUMNS} FROM notifications "  # noqa: S608 - constant identifiers
        "WHERE state = 'PENDING' AND next_attempt_time <= :now ORDER BY next_attempt_time LIMIT :limit",
        {"now": now, "limit": limit},
    )
    return [_note(row) for row in rows]


def claim(store: Store, note: NotificationRecord, *, now: int, lease_until: int) -> bool:
    """Take ``note`` for one attempt (compare-and-set on its attempt count): True for exactly one claimer.

    The claim is committed before anything is sent; its lease (``next_attempt_time``) makes the row due
    again if the claimer dies while sending.
    """
    changed = store._write(
        "UPDATE notifications SET attempts = attempts + 1, next_attempt_time = :lease_until "
        "WHERE notification_key = :key AND state = 'PENDING' AND attempts = :attempts "
        "AND next_attempt_time <= :now",
        {"key": note.notification_key, "attempts": note.attempts, "now": now, "lease_until": lease_until},
    )
    return changed == 1


def finish_attempt(
    store: Store,
    key: str,
    *,
    attempt_number: int,
    start_time: int,
    end_time: int,
    error: str | None,
    state: str,
    next_attempt_time: int,
) -> None:
    """Record an attempt's outcome and the notification's new state, in one transaction."""
    with store.transaction():
        store._write(
            "INSERT INTO notification_attempts (notification_key, attempt_number, start_time, end_time, "
            "ok, error) VALUES (:key, :n, :start, :end, :ok, :error) "
            "ON CONFLICT (notification_key, attempt_number) DO NOTHING",
            {
                "key": key,
                "n": attempt_number,
                "start": start_time,
                "end": end_time,
                "ok": error is None,
                "error": error,
            },
        )
        store._write(
            "UPDATE notifications SET state = :state, next_attempt_time = :next, last_error = :error, "
            "sent_time = :sent WHERE notification_key = :key AND attempts = :n",
            {
                "key": key,
                "n": attempt_number,
                "state": state,
                "next": next_attempt_time,
                "error": error,
                "sent": end_time if state == SENT else 0,
            },
        )


def list_notifications(store: Store, *, job_run_id: int | None = None) -> list[NotificationRecord]:
    where = "" if job_run_id is None else " WHERE job_run_id = :job_run_id"
    rows = store._all(
        f"SELECT {_NOTE_COLUMNS} FROM notifications{where} ORDER BY created_time, notification_key",  # noqa: S608 - constant identifiers
        {"job_run_id": job_run_id},
    )
    return [_note(row) for row in rows]


def list_attempts(store: Store, key: str) -> list[AttemptRecord]:
    rows = store._all(
        "SELECT notification_key, attempt_number, start_time, end_time, ok, error "
        "FROM notification_attempts WHERE notification_key = :key ORDER BY attempt_number",
        {"key": key},
    )
    return [AttemptRecord(r[0], int(r[1]), int(r[2]), int(r[3]), bool(r[4]), r[5]) for r in rows]


def count_pending(store: Store) -> int:
    """Notifications not yet sent nor given up (due, leased or waiting for their backoff)."""
    return int(store._one("SELECT COUNT(*) FROM notifications WHERE state = 'PENDING'", {})[0])


def next_due_time(store: Store) -> int | None:
    """When the earliest PENDING notification is due (or its lease expires), None without any."""
    row = store._one("SELECT MIN(next_attempt_time) FROM notifications WHERE state = 'PENDING'", {})
    return None if row is None or row[0] is None else int(row[0])
