"""The scheduler's rows: trigger state (compare-and-set), fired slots and the files a trigger has seen.

Tables ``scheduler_triggers``, ``scheduler_slots`` and ``scheduler_files`` (``sluice.store.schema``,
migration 0004). Every function takes the :class:`~sluice.store.Store` and uses its connection and its
transactions: :func:`fire` writes the trigger's new state, the slot and the run in ONE transaction, so a
run exists if and only if its slot is recorded and its trigger moved on.

Exactly-once: a trigger row changes only if it still has the ``version`` its writer read (otherwise
another scheduler acted first and the caller re-reads next tick), and the slot's primary key (job, slot
time) refuses a second run for one slot even if the state were lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sluice.store import Store
from sluice.store.records import RunRecord

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode

#: Fired slots older than this (before the newest one of the job) are deleted when a job fires again.
SLOT_RETENTION_MS = 30 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TriggerRow:
    """A trigger's stored state: ``config`` is its settings fingerprint, ``state`` its JSON cursor."""

    job_id: int
    kind: str
    config: str
    state: dict[str, Any]
    version: int
    updated_time: int


@dataclass(frozen=True)
class SlotRow:
    job_id: int
    slot_time: int
    kind: str
    run_id: int
    created_time: int


#: Paths written per statement (a first scan may find thousands).
_BATCH = 500
_ADD_SQLITE = (
    "INSERT INTO scheduler_files (job_id, path) SELECT :job_id, value FROM json_each(:paths) "
    "WHERE true ON CONFLICT (job_id, path) DO NOTHING"
)
_ADD_PG = (
    "INSERT INTO scheduler_files (job_id, path) SELECT :job_id, unnest(CAST(:paths AS TEXT[])) "
    "ON CONFLICT (job_id, path) DO NOTHING"
)
_REMOVE_SQLITE = (
    "DELETE FROM scheduler_files WHERE job_id = :job_id AND path IN (SELECT value FROM json_each(:paths))"
)
_REMOVE_PG = "DELETE FROM scheduler_files WHERE job_id = :job_id AND path = ANY(CAST(:paths AS TEXT[]))"


def _paths(paths: Sequence[str], postgres: bool) -> object:
    return list(paths) if postgres else json.dumps(list(paths))


class _Lost(Exception):
    """Another scheduler acted first: roll the transaction back."""


def fingerprint(config: Mapping[str, Any]) -> str:
    """A stable text for the settings that reset a trigger when they change."""
    return _dumps(dict(config))


def load_triggers(store: Store) -> dict[tuple[int, str], TriggerRow]:
    """Every trigger row, by (job id, kind)."""
    rows = store._all("SELECT job_id, kind, config, state, version, updated_time FROM scheduler_triggers", {})
    return {
        (int(r[0]), str(r[1])): TriggerRow(
            int(r[0]), str(r[1]), str(r[2]), json.loads(r[3]), int(r[4]), int(r[5])
        )
        for r in rows
    }


def get_trigger(store: Store, job_id: int, kind: str) -> TriggerRow | None:
    row = store._one(
        "SELECT job_id, kind, config, state, version, updated_time FROM scheduler_triggers "
        "WHERE job_id = :job_id AND kind = :kind",
        {"job_id": job_id, "kind": kind},
    )
    if row is None:
        return None
    return TriggerRow(int(row[0]), str(row[1]), str(row[2]), json.loads(row[3]), int(row[4]), int(row[5]))


def _cas(store: Store, row: TriggerRow | None, new: TriggerRow) -> bool:
    """Write ``new`` iff the stored row is still ``row`` (None: iff there is none). Inside a transaction."""
    params = {
        "job_id": new.job_id,
        "kind": new.kind,
        "config": new.config,
        "state": _dumps(new.state),
        "now": new.updated_time,
    }
    if row is None:
        inserted = store._all(
            "INSERT INTO scheduler_triggers (job_id, kind, config, state, version, updated_time) "
            "VALUES (:job_id, :kind, :config, :state, 1, :now) "
            "ON CONFLICT (job_id, kind) DO NOTHING RETURNING version",
            params,
        )
        return bool(inserted)
    changed = store._write(
        "UPDATE scheduler_triggers SET config = :config, state = :state, version = version + 1, "
        "updated_time = :now WHERE job_id = :job_id AND kind = :kind AND version = :version",
        {**params, "version": row.version},
    )
    return changed == 1


def put_trigger(
    store: Store,
    row: TriggerRow | None,
    *,
    job_id: int,
    kind: str,
    config: str,
    state: dict[str, Any],
    now: int,
) -> TriggerRow | None:
    """Store a trigger's new state iff nobody changed it since ``row`` was read; the new row or None."""
    new = TriggerRow(job_id, kind, config, state, (row.version if row else 0) + 1, now)
    with store.transaction():
        return new if _cas(store, row, new) else None


def delete_triggers(store: Store, keys: Iterable[tuple[int, str]]) -> None:
    """Forget triggers (their job is gone or no longer has that trigger); their seen files too."""
    with store.transaction():
        for job_id, kind in keys:
            store._write(
                "DELETE FROM scheduler_triggers WHERE job_id = :job_id AND kind = :kind",
                {"job_id": job_id, "kind": kind},
            )
            if kind == "file_arrival":
                store._write("DELETE FROM scheduler_files WHERE job_id = :job_id", {"job_id": job_id})


def fire(  # noqa: PLR0913 - one fired slot's facts, all keyword-only
    store: Store,
    row: TriggerRow | None,
    *,
    job_id: int,
    kind: str,
    config: str,
    state: dict[str, Any],
    slot_time: int,
    now: int,
    create_run: Callable[[], RunRecord],
    state_for: Callable[[RunRecord], dict[str, Any]] | None = None,
) -> tuple[TriggerRow, RunRecord] | None:
    """In one transaction: move the trigger to ``state``, record the slot, create the run.

    ``state_for(run)``, when given, replaces ``state`` once the run exists (a state naming its run).
    None (and nothing written) when another scheduler moved the trigger first or fired this slot.
    """
    new = TriggerRow(job_id, kind, config, state, (row.version if row else 0) + 1, now)
    try:
        with store.transaction():
            if not _cas(store, row, new):
                raise _Lost
            claimed = store._all(
                "INSERT INTO scheduler_slots (job_id, slot_time, kind, run_id, created_time) "
                "VALUES (:job_id, :slot_time, :kind, 0, :now) "
                "ON CONFLICT (job_id, slot_time) DO NOTHING RETURNING job_id",
                {"job_id": job_id, "slot_time": slot_time, "kind": kind, "now": now},
            )
            if not claimed:
                raise _Lost
            run = create_run()
            store._write(
                "UPDATE scheduler_slots SET run_id = :run_id "
                "WHERE job_id = :job_id AND slot_time = :slot_time",
                {"run_id": run.run_id, "job_id": job_id, "slot_time": slot_time},
            )
            if state_for is not None:
                new = TriggerRow(job_id, kind, config, state_for(run), new.version, now)
                store._write(
                    "UPDATE scheduler_triggers SET state = :state WHERE job_id = :job_id AND kind = :kind",
                    {"state": _dumps(new.state), "job_id": job_id, "kind": kind},
                )
            store._write(
                "DELETE FROM scheduler_slots WHERE job_id = :job_id AND slot_time < :oldest",
                {"job_id": job_id, "oldest": slot_time - SLOT_RETENTION_MS},
            )
    except _Lost:
        return None
    return new, run


def list_slots(store: Store, job_id: int) -> list[SlotRow]:
    """A job's fired slots, oldest first."""
    rows = store._all(
        "SELECT job_id, slot_time, kind, run_id, created_time FROM scheduler_slots "
        "WHERE job_id = :job_id ORDER BY slot_time",
        {"job_id": job_id},
    )
    return [SlotRow(int(r[0]), int(r[1]), str(r[2]), int(r[3]), int(r[4])) for r in rows]


def seen_files(store: Store, job_id: int) -> set[str]:
    rows = store._all("SELECT path FROM scheduler_files WHERE job_id = :job_id", {"job_id": job_id})
    return {str(r[0]) for r in rows}


def record_files(
    store: Store,
    row: TriggerRow | None,
    new: TriggerRow,
    *,
    added: Sequence[str],
    removed: Sequence[str],
) -> TriggerRow | None:
    """Mark files seen (and forget vanished ones) with the trigger's new state, iff nobody moved it first."""
    try:
        with store.transaction():
            if not _cas(store, row, new):
                raise _Lost
            postgres = store.backend == "postgresql"
            for start in range(0, len(added), _BATCH):
                store._write(
                    _ADD_PG if postgres else _ADD_SQLITE,
                    {"job_id": new.job_id, "paths": _paths(added[start : start + _BATCH], postgres)},
                )
            for start in range(0, len(removed), _BATCH):
                store._write(
                    _REMOVE_PG if postgres else _REMOVE_SQLITE,
                    {"job_id": new.job_id, "paths": _paths(removed[start : start + _BATCH], postgres)},
                )
    except _Lost:
        return None
    return new
