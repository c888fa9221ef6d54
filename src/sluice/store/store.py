"""The Store: the single source of truth for jobs, runs, task runs, task values and repair history.

Plain DB-API with hand-written portable SQL (``sluice.store.db`` explains the dialect markers); the schema
is ``sluice.store.schema``. The store never reads the clock: every time is epoch milliseconds from the caller.

Transactions: every mutating method commits by itself, unless it runs inside ``with store.transaction():``,
which commits everything in it once. One Store holds one connection; its methods are serialised by a lock,
so threads may share it (they then take turns).

Ids: job runs and task runs share one global id sequence (Databricks run ids are global), allocated from
the ``counters`` table (``allocate_run_ids`` hands out a batch); job ids and repair ids have their own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from sluice.errors import ConflictError, InternalError, InvalidRequestError, NotFoundError
from sluice.states import LifeCycleState, QueueDetailsCode, ResultState, TerminationCode, TerminationType
from sluice.store import db as _db
from sluice.store.records import JobRecord, RepairRecord, RunRecord, TaskRunRecord

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads

R = TypeVar("R")


def _sql_list(states: Sequence[str]) -> str:
    return "(" + ", ".join(f"'{s}'" for s in states) + ")"


_TERMINAL = _sql_list([s for s in LifeCycleState if s.is_terminal])
_NOT_TERMINAL = _sql_list([s for s in LifeCycleState if not s.is_terminal])
#: States that occupy one of a job's ``max_concurrent_runs`` slots, plus QUEUED (which waits for one).
_SLOT_STATES = _sql_list(["QUEUED", "PENDING", "RUNNING", "TERMINATING"])


class _Table(Generic[R]):
    """A table whose columns are the fields of record type ``R``: SQL text and value conversion."""

    def __init__(
        self,
        name: str,
        record: type[Any],
        key: str,
        *,
        json_fields: Sequence[str],
        bool_fields: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.key = key
        self.columns = tuple(f.name for f in fields(record))
        self._make: Callable[..., R] = record
        self._json = frozenset(json_fields)
        self._decoders = tuple(
            _loads_nullable if c in self._json else bool if c in bool_fields else None for c in self.columns
        )
        self.select = f"SELECT {', '.join(self.columns)} FROM {name}"  # noqa: S608 - constant identifiers
        self.insert = (
            f"INSERT INTO {name} ({', '.join(self.columns)}) "  # noqa: S608 - constant identifiers
            f"VALUES ({', '.join(':' + c for c in self.columns)})"
        )
        self._updates: dict[tuple[str, ...], str] = {}

    def decode(self, row: Sequence[Any]) -> R:
        return self._make(*[v if d is None else d(v) for d, v in zip(self._decoders, row, strict=True)])

    def encode(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {k: _dumps_nullable(v) if k in self._json else v for k, v in values.items()}

    def update_sql(self, names: tuple[str, ...]) -> str:
        """``UPDATE`` of the columns ``names`` of the row whose key is ``:_key``."""
        sql = self._updates.get(names)
        if sql is None:
            unknown = sorted(set(names) - set(self.columns) | ({self.key} & set(names)))
            if unknown or not names:
                raise TypeError(
                    f"Cannot update {self.name} fields {unknown or names}: not updatable columns."
                )
            assignments = ", ".join(f"{n} = :{n}" for n in names)
            sql = self._updates[names] = f"UPDATE {self.name} SET {assignments} WHERE {self.key} = :_key"  # noqa: S608 - names checked against the columns
        return sql


def _loads_nullable(text: str | None) -> Any:
    return None if text is None else _loads(text)


def _dumps_nullable(value: Any) -> str | None:
    return None if value is None else _dumps(value)


_JOB_FIELDS = tuple(f.name for f in fields(JobRecord))
_JOB_SELECT = f"SELECT {', '.join(_JOB_FIELDS)} FROM jobs"  # noqa: S608 - constant identifiers
_RUNS = _Table[RunRecord](
    "runs",
    RunRecord,
    "run_id",
    json_fields=("settings", "job_parameters", "overriding_parameters", "trigger_info", "only_tasks"),
    bool_fields=("cancel_requested",),
)
_TASK_RUNS = _Table[TaskRunRecord](
    "task_runs", TaskRunRecord, "run_id", json_fields=("resolved_values", "output")
)
_REPAIRS = _Table[RepairRecord]("repairs", RepairRecord, "repair_id", json_fields=("task_run_ids",))

_ALLOCATE = "UPDATE counters SET value = value + :n WHERE name = :name RETURNING value"
_LOCK_JOB = "SELECT job_id FROM jobs WHERE job_id = :job_id{for_update}"
#: Occupied slots of a job and its oldest queued run, in one read (after the job's lock).
_SLOTS = (
    "SELECT COUNT(CASE WHEN state <> 'QUEUED' THEN 1 END), "  # noqa: S608 - constant states
    "MIN(CASE WHEN state = 'QUEUED' THEN run_id END) "
    f"FROM runs WHERE job_id = :job_id AND state IN {_SLOT_STATES}"
)
_RUN_BY_ID = f"{_RUNS.select} WHERE run_id = :run_id"
_TASK_RUN_BY_ID = f"{_TASK_RUNS.select} WHERE run_id = :run_id"
_TASK_RUN_INSERT_WITH_ID = (
    "WITH allocated AS (UPDATE counters SET value = value + 1 "  # noqa: S608 - constant identifiers
    "WHERE name = 'run_id' RETURNING value) "
    + _TASK_RUNS.insert.replace("VALUES (:run_id,", "VALUES ((SELECT value FROM allocated),")
    + " RETURNING run_id"
)
_CANCEL_TREE = (
    "UPDATE runs SET cancel_requested = TRUE WHERE run_id IN ("
    "WITH RECURSIVE tree(run_id) AS (SELECT run_id FROM runs WHERE run_id = :run_id "
    "UNION SELECT runs.run_id FROM runs JOIN tree ON runs.parent_run_id = tree.run_id) "
    "SELECT run_id FROM tree)"
)
_CLAIM = (
    "UPDATE runs SET state = 'PENDING', driver = :driver, "  # noqa: S608 - constant identifiers
    "start_time = :now, heartbeat_time = :now, "
    f"queue_reason = NULL WHERE run_id = :run_id AND state = 'QUEUED' RETURNING {', '.join(_RUNS.columns)}"
)


#: The QUEUED runs of a job being deleted (or deleted) end CANCELED.
_CANCEL_DELETED_QUEUED = (
    "UPDATE runs SET state = 'TERMINATED', result_state = 'CANCELED', "
    "state_message = 'The job was deleted while this run was queued.', end_time = :now, "
    "queue_reason = NULL, termination_code = 'USER_CANCELED', termination_type = 'SUCCESS' "
    "WHERE job_id = :job_id AND state = 'QUEUED'"
)
#: Unfinished task runs of a run its driver failed.
_FAIL_TASK_RUNS = (
    "UPDATE task_runs SET state = 'INTERNAL_ERROR', result_state = 'FAILED', "  # noqa: S608 - constant states
    "state_message = :message, end_time = :now "
    f"WHERE job_run_id = :run_id AND state IN {_NOT_TERMINAL}"
)
_FAIL_RUN = (
    "UPDATE runs SET state = 'INTERNAL_ERROR', result_state = 'FAILED', state_message = :message, "  # noqa: S608 - constant states
    "end_time = :now, driver = NULL, queue_reason = NULL, "
    "termination_code = 'INTERNAL_ERROR', termination_type = 'INTERNAL_ERROR' "
    f"WHERE run_id = :run_id AND state IN {_NOT_TERMINAL}"
)


def _run_missing(run_id: int) -> NotFoundError:
    return NotFoundError(f"Run {run_id} does not exist.")


class Store:
    """Jobs, runs, task runs, task values and repairs in SQLite or PostgreSQL. Open with ``Store.open``."""

    def __init__(self, database: _db.Database, url: str | None = None) -> None:
        self._db = database
        #: The URL the store was opened with (None: the default SQLite file under the home directory).
        self.url = url
        self._lock = threading.RLock()
        self._depth = 0
        self._savepoints = 0
        self._rollback_only = False

    @classmethod
    def open(cls, url: str | None, home: Path) -> Self:
        """Open (creating or upgrading the schema if needed) ``url``; None is SQLite at ``home/sluice.db``."""
        return cls(_db.connect(url, home), url)

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._db.dialect.name

    @property
    def description(self) -> str:
        """Where the data lives (a URL without password), for messages."""
        return self._db.description

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- transactions and plumbing --------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits once; nested calls join the outer transaction.

        An exception escaping a nested block rolls the whole transaction back, even if an outer block
        catches it (the outer block then raises InternalError instead of committing half of its work).
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                except BaseException:
                    self._rollback_only = True
                    raise
                finally:
                    self._depth -= 1
                return
            self._db.begin()
            self._depth, self._rollback_only = 1, False
            try:
                yield
            except BaseException:
                self._depth = 0
                self._db.rollback()
                raise
            self._depth = 0
            if self._rollback_only:
                self._db.rollback()
                raise InternalError("A store transaction was rolled back: a nested block failed inside it.")
            try:
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise

    def unavailable(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the database could not do the work (locked, connection lost), rather than
        that the work was wrong: such work is worth trying again."""
        return self._db.unavailable(exc)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A block that can fail alone: inside a transaction, an exception escaping the block rolls back
        only the block's writes (a SQL savepoint) and is re-raised, and the transaction may still commit.
        Outside a transaction it just runs the block (each statement, or transaction, commits alone)."""
        with self._lock:
            if not self._depth:
                yield
                return
            self._savepoints += 1
            name = f"sluice_sp{self._savepoints}"
            rollback_only = self._rollback_only
            self._db.conn.execute(f"SAVEPOINT {name}", {})
            try:
                yield
            except BaseException:
                self._db.conn.execute(f"ROLLBACK TO SAVEPOINT {name}", {})
                self._db.conn.execute(f"RELEASE SAVEPOINT {name}", {})
                self._rollback_only = rollback_only  # what failed inside is undone
                raise
            finally:
                self._savepoints -= 1
            self._db.conn.execute(f"RELEASE SAVEPOINT {name}", {})

    def _all(self, sql: str, params: Mapping[str, Any]) -> list[Any]:
        with self._lock:
            rows: list[Any] = self._db.execute(sql, params).fetchall()
            return rows

    def _one(self, sql: str, params: Mapping[str, Any]) -> Any:
        with self._lock:
            return self._db.execute(sql, params).fetchone()

    def _write(self, sql: str, params: Mapping[str, Any]) -> int:
        """Run one statement; the number of rows it changed."""
        with self._lock:
            return self._db.execute(sql, params).rowcount

    def _allocate(self, counter: str, n: int) -> int:
        """Reserve ``n`` ids of ``counter``; the last one (the ids are ``last - n + 1 .. last``)."""
        rows = self._all(_ALLOCATE, {"n": n, "name": counter})
        if not rows:
            raise InternalError(f"The store has no '{counter}' counter: its schema is damaged.")
        return int(rows[0][0])

    def allocate_run_ids(self, n: int) -> range:
        """Reserve ``n`` ids of the global run id sequence, for ``create_task_run(run_id=...)``."""
        if n < 1:
            raise ValueError(f"allocate_run_ids needs n >= 1, got {n}")
        last = self._allocate("run_id", n)
        return range(last - n + 1, last + 1)

    # --- jobs -----------------------------------------------------------------------------------------

    def create_job(
        self,
        settings: dict[str, Any],
        *,
        now: int,
        bundle_key: str | None = None,
        source_path: str | None = None,
        creator: str = "",
    ) -> JobRecord:
        name = str(settings.get("name") or "")
        with self.transaction():
            job_id = self._allocate("job_id", 1)
            params = {
                "job_id": job_id,
                "name": name,
                "name_lower": name.lower(),
                "settings": _dumps(settings),
                "now": now,
                "creator": creator,
                "bundle_key": bundle_key,
                "source_path": source_path,
            }
            try:
                self._write(
                    "INSERT INTO jobs (job_id, name, name_lower, settings, created_time, updated_time, "
                    "creator_user_name, bundle_key, source_path) VALUES (:job_id, :name, :name_lower, "
                    ":settings, :now, :now, :creator, :bundle_key, :source_path)",
                    params,
                )
            except self._db.integrity_errors as exc:
                raise ConflictError(
                    f"A job deployed from bundle key '{bundle_key}' already exists; update it instead."
                ) from exc
        return JobRecord(job_id, settings, now, now, creator, bundle_key, source_path)

    def get_job(self, job_id: int) -> JobRecord:
        row = self._one(f"{_JOB_SELECT} WHERE job_id = :job_id", {"job_id": job_id})
        if row is None:
            raise NotFoundError(f"Job {job_id} does not exist.")
        return _job(row)

    def find_job_by_bundle_key(self, key: str) -> JobRecord | None:
        row = self._one(f"{_JOB_SELECT} WHERE bundle_key = :key", {"key": key})
        return None if row is None else _job(row)

    def list_jobs(self, *, name: str | None = None, limit: int = 20, offset: int = 0) -> list[JobRecord]:
        """Jobs ordered by id; ``name`` matches exactly, ignoring case."""
        where = "" if name is None else " WHERE name_lower = :name_lower"
        rows = self._all(
            f"{_JOB_SELECT}{where} ORDER BY job_id LIMIT :limit OFFSET :offset",
            {"name_lower": None if name is None else name.lower(), "limit": limit, "offset": offset},
        )
        return [_job(row) for row in rows]

    def count_jobs(self) -> int:
        return int(self._one("SELECT COUNT(*) FROM jobs", {})[0])

    def update_job(
        self, job_id: int, settings: dict[str, Any], *, now: int, source_path: str | None = None
    ) -> JobRecord:
        """Replace the job's settings (and its source path, unless None)."""
        name = str(settings.get("name") or "")
        rows = self._all(
            "UPDATE jobs SET settings = :settings, name = :name, "  # noqa: S608 - constant identifiers
            "name_lower = :name_lower, "
            "updated_time = :now, source_path = COALESCE(:source_path, source_path) "
            f"WHERE job_id = :job_id RETURNING {', '.join(_JOB_FIELDS)}",
            {
                "job_id": job_id,
                "settings": _dumps(settings),
                "name": name,
                "name_lower": name.lower(),
                "now": now,
                "source_path": source_path,
            },
        )
        if not rows:
            raise NotFoundError(f"Job {job_id} does not exist.")
        return _job(rows[0])

    def delete_job(self, job_id: int, *, now: int) -> list[int]:
        """Delete the job and end its active runs, as Databricks does ("runs that were active before the
        request may still be active; they are terminated asynchronously"): in the same transaction its
        QUEUED runs end CANCELED and every other active run (and the runs it started) is flagged for
        cancellation, which its driver carries out. Its runs stay readable and keep their ``job_id``.
        Returns the ids of the runs it ended or flagged."""
        with self.transaction():
            if self._one(_LOCK_JOB, {"job_id": job_id}) is None:
                raise NotFoundError(f"Job {job_id} does not exist.")
            active = [
                int(row[0])
                for row in self._all(
                    f"SELECT run_id FROM runs WHERE job_id = :job_id AND state IN {_NOT_TERMINAL}",  # noqa: S608 - constant states
                    {"job_id": job_id},
                )
            ]
            self._write("DELETE FROM jobs WHERE job_id = :job_id", {"job_id": job_id})
            self._write(_CANCEL_DELETED_QUEUED, {"job_id": job_id, "now": now})
            for run_id in active:
                self._write(_CANCEL_TREE, {"run_id": run_id})
        return active

    # --- runs -----------------------------------------------------------------------------------------

    def create_run(  # noqa: PLR0913 - the run-now/submit request fields, all keyword-only
        self,
        *,
        job_id: int | None,
        settings: dict[str, Any],
        run_name: str,
        run_type: str,
        trigger: str,
        job_parameters: list[dict[str, Any]],
        overriding_parameters: dict[str, Any],
        now: int,
        queue_enabled: bool,
        max_concurrent_runs: int,
        idempotency_token: str | None = None,
        parent_run_id: int | None = None,
        trigger_info: dict[str, Any] | None = None,
        only_tasks: list[str] | None = None,
        driver: str | None = None,
        creator_user_name: str = "",
    ) -> tuple[RunRecord, bool]:
        """Admit a new run in one transaction: ``(run, True)``, or ``(earlier run, False)`` for a used token.

        Under the job's lock, the run is PENDING (driven by ``driver``) if the job has a free slot of
        ``max_concurrent_runs`` and no older queued run; else QUEUED if ``queue_enabled``, else SKIPPED.
        Runs without a job (one-time submits) have no concurrency limit.
        """
        with self.transaction():
            occupied, oldest_queued = (0, None) if job_id is None else self._lock_job_slots(job_id)
            run_id = self._allocate("run_id", 1)
            if idempotency_token is not None:
                earlier = self._use_token(job_id, idempotency_token, run_id)
                if earlier is not None:
                    return earlier, False
            admission = _admit(
                now=now,
                free=job_id is None or (occupied < max_concurrent_runs and oldest_queued is None),
                queue_enabled=queue_enabled,
                max_concurrent_runs=max_concurrent_runs,
                driver=driver,
            )
            run = RunRecord(
                run_id=run_id,
                job_id=job_id,
                run_name=run_name,
                run_type=run_type,
                trigger=trigger,
                settings=settings,
                job_parameters=job_parameters,
                overriding_parameters=overriding_parameters,
                created_time=now,
                idempotency_token=idempotency_token,
                parent_run_id=parent_run_id,
                trigger_info=trigger_info or {},
                only_tasks=only_tasks,
                creator_user_name=creator_user_name,
                **admission,
            )
            self._write(_RUNS.insert, _RUNS.encode(_record_values(run)))
        return run, True

    def _lock_job_slots(self, job_id: int) -> tuple[int, int | None]:
        """Lock the job (until the transaction ends): its occupied slots and its oldest queued run id."""
        if self._one(_LOCK_JOB, {"job_id": job_id}) is None:
            raise NotFoundError(f"Job {job_id} does not exist.")
        occupied, oldest_queued = self._one(_SLOTS, {"job_id": job_id})
        return int(occupied), None if oldest_queued is None else int(oldest_queued)

    def _use_token(self, job_id: int | None, token: str, run_id: int) -> RunRecord | None:
        """Record ``token`` for ``run_id``; the earlier run if the token was used already."""
        key = {"job_key": job_id or 0, "token": token}
        inserted = self._all(
            "INSERT INTO idempotency_tokens (job_key, token, run_id) VALUES (:job_key, :token, :run_id) "
            "ON CONFLICT (job_key, token) DO NOTHING RETURNING run_id",
            {**key, "run_id": run_id},
        )
        if inserted:
            return None
        earlier_id = self._one(
            "SELECT run_id FROM idempotency_tokens WHERE job_key = :job_key AND token = :token", key
        )[0]
        row = self._one(_RUN_BY_ID, {"run_id": earlier_id})
        if row is None:
            raise ConflictError(
                f"Run {earlier_id}, created with idempotency token '{token}', was deleted: "
                "use a new idempotency token."
            )
        return _RUNS.decode(row)

    def claim_queued_run(
        self, run_id: int, *, driver: str, now: int, max_concurrent_runs: int
    ) -> RunRecord | None:
        """QUEUED -> PENDING (driven by ``driver``) iff its job has a free slot and it is the job's oldest
        queued run; None otherwise (including when the run is no longer queued)."""
        with self.transaction():
            row = self._one("SELECT job_id, state FROM runs WHERE run_id = :run_id", {"run_id": run_id})
            if row is None:
                raise _run_missing(run_id)
            job_id, state = row
            if state != LifeCycleState.QUEUED:
                return None
            if job_id is not None:
                if self._one(_LOCK_JOB, {"job_id": job_id}) is None:  # deleted: its queued runs end
                    self._write(_CANCEL_DELETED_QUEUED, {"job_id": job_id, "now": now})
                    return None
                occupied, oldest_queued = self._lock_job_slots(int(job_id))
                if occupied >= max_concurrent_runs or oldest_queued != run_id:
                    return None
            rows = self._all(_CLAIM, {"run_id": run_id, "driver": driver, "now": now})
        return _RUNS.decode(rows[0]) if rows else None

    def get_run(self, run_id: int) -> RunRecord:
        row = self._one(_RUN_BY_ID, {"run_id": run_id})
        if row is None:
            raise _run_missing(run_id)
        return _RUNS.decode(row)

    def list_runs(
        self,
        *,
        job_id: int | None = None,
        active_only: bool = False,
        completed_only: bool = False,
        run_type: str | None = None,
        start_time_from: int | None = None,
        start_time_to: int | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Runs newest first, filtered like ``jobs/runs/list``."""
        if active_only and completed_only:
            raise InvalidRequestError("active_only and completed_only cannot both be true.")
        conditions = [
            sql
            for sql, wanted in (
                ("job_id = :job_id", job_id is not None),
                (f"state IN {_NOT_TERMINAL}", active_only),
                (f"state IN {_TERMINAL}", completed_only),
                ("run_type = :run_type", run_type is not None),
                ("start_time >= :start_time_from", start_time_from is not None),
                ("start_time <= :start_time_to", start_time_to is not None),
            )
            if wanted
        ]
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        params = {
            "job_id": job_id,
            "run_type": run_type,
            "start_time_from": start_time_from,
            "start_time_to": start_time_to,
            "limit": limit,
            "offset": offset,
        }
        rows = self._all(f"{_RUNS.select}{where} ORDER BY run_id DESC LIMIT :limit OFFSET :offset", params)
        return [_RUNS.decode(row) for row in rows]

    def update_run(self, run_id: int, /, **fields: Any) -> None:
        """Set ``fields`` (RunRecord field names, except run_id) of the run."""
        params = _RUNS.encode(fields)
        params["_key"] = run_id
        if not self._write(_RUNS.update_sql(tuple(fields)), params):
            raise _run_missing(run_id)

    def delete_run(self, run_id: int) -> None:
        """Delete the run with its task runs, task values and repair history."""
        if not self._write("DELETE FROM runs WHERE run_id = :run_id", {"run_id": run_id}):
            raise _run_missing(run_id)

    # --- driving and crash safety ---------------------------------------------------------------------

    def heartbeat(self, driver: str, run_ids: Sequence[int], now: int) -> None:
        """Mark the runs that ``driver`` drives as alive at ``now``."""
        if run_ids:
            self._write(
                "UPDATE runs SET heartbeat_time = :now WHERE driver = :driver AND run_id {ids:run_ids}",
                {"now": now, "driver": driver, "run_ids": self._db.dialect.ids(run_ids)},
            )

    def take_over_run(self, run_id: int, *, expected_driver: str | None, driver: str, now: int) -> bool:
        """Make ``driver`` the run's driver iff its driver is still ``expected_driver`` (compare-and-set).

        Two processes reconciling the same orphan at once: exactly one of them gets it.
        """
        if expected_driver is None:
            sql = (
                "UPDATE runs SET driver = :driver, heartbeat_time = :now"
                " WHERE run_id = :run_id AND driver IS NULL"
            )
        else:
            sql = (
                "UPDATE runs SET driver = :driver, heartbeat_time = :now"
                " WHERE run_id = :run_id AND driver = :expected"
            )
        params = {"driver": driver, "now": now, "run_id": run_id, "expected": expected_driver}
        if expected_driver is None:
            del params["expected"]
        with self.transaction():
            return self._write(sql, params) == 1

    def fail_run(self, run_id: int, message: str, *, now: int) -> None:
        """End an active run and its unfinished task runs INTERNAL_ERROR / FAILED with ``message`` (its
        driver could not drive it further); an ended run is left as it is."""
        with self.transaction():
            params = {"run_id": run_id, "message": message, "now": now}
            self._write(_FAIL_TASK_RUNS, params)
            self._write(_FAIL_RUN, params)

    def runs_driven_by_others(self, driver: str, run_ids: Sequence[int]) -> list[int]:
        """Which of ``run_ids`` are active and driven by a driver other than ``driver`` (taken over)."""
        if not run_ids:
            return []
        rows = self._all(
            f"SELECT run_id FROM runs WHERE run_id {{ids:run_ids}} AND state IN {_NOT_TERMINAL} "  # noqa: S608 - constant states
            "AND driver IS NOT NULL AND driver <> :driver ORDER BY run_id",
            {"run_ids": self._db.dialect.ids(run_ids), "driver": driver},
        )
        return [int(row[0]) for row in rows]

    def still_queued(self, run_ids: Sequence[int]) -> set[int]:
        """Which of ``run_ids`` are still QUEUED (one read, however many runs wait)."""
        if not run_ids:
            return set()
        rows = self._all(
            "SELECT run_id FROM runs WHERE run_id {ids:run_ids} AND state = 'QUEUED'",
            {"run_ids": self._db.dialect.ids(run_ids)},
        )
        return {int(row[0]) for row in rows}

    def request_cancel(self, run_id: int) -> None:
        """Ask the run's driver to cancel it, and every run it started (``parent_run_id``), transitively."""
        if not self._write(_CANCEL_TREE, {"run_id": run_id}):
            raise _run_missing(run_id)

    def cancel_requested(self, run_ids: Sequence[int]) -> set[int]:
        """Which of ``run_ids`` were asked to cancel."""
        if not run_ids:
            return set()
        rows = self._all(
            "SELECT run_id FROM runs WHERE run_id {ids:run_ids} AND cancel_requested",
            {"run_ids": self._db.dialect.ids(run_ids)},
        )
        return {int(row[0]) for row in rows}

    def unclaimed_child_runs(self, parent_run_ids: Sequence[int]) -> list[RunRecord]:
        """PENDING runs that no driver owns, started by one of ``parent_run_ids`` (dbutils.notebook.run)."""
        if not parent_run_ids:
            return []
        rows = self._all(
            f"{_RUNS.select} WHERE parent_run_id {{ids:parents}} AND driver IS NULL AND state = :state"
            " ORDER BY run_id",
            {"parents": self._db.dialect.ids(parent_run_ids), "state": LifeCycleState.PENDING.value},
        )
        return [_RUNS.decode(row) for row in rows]

    def active_runs(self) -> list[RunRecord]:
        """Every run not yet terminal (QUEUED included), oldest first."""
        rows = self._all(f"{_RUNS.select} WHERE state IN {_NOT_TERMINAL} ORDER BY run_id", {})
        return [_RUNS.decode(row) for row in rows]

    # --- task runs ------------------------------------------------------------------------------------

    def create_task_run(  # noqa: PLR0913 - a task run's creation fields, all keyword-only
        self,
        *,
        job_run_id: int,
        task_key: str,
        attempt_number: int,
        state: str,
        now: int,
        original_attempt_run_id: int | None = None,
        repair_id: int = 0,
        parent_task_run_id: int | None = None,
        iteration: int | None = None,
        attempt_dir: str | None = None,
        resolved_values: dict[str, Any] | None = None,
        start_time: int = 0,
        run_id: int | None = None,
    ) -> TaskRunRecord:
        """Insert a task run (one attempt). Its id comes from the global sequence, or is ``run_id`` when
        the caller reserved it with ``allocate_run_ids``."""
        record = TaskRunRecord(
            run_id=run_id or 0,
            job_run_id=job_run_id,
            task_key=task_key,
            attempt_number=attempt_number,
            state=state,
            result_state=None,
            state_message="",
            start_time=start_time,
            end_time=0,
            created_time=now,
            original_attempt_run_id=original_attempt_run_id,
            repair_id=repair_id,
            parent_task_run_id=parent_task_run_id,
            iteration=iteration,
            resolved_values=resolved_values or {},
            attempt_dir=attempt_dir,
        )
        params = _TASK_RUNS.encode(_record_values(record))
        try:
            new_id = self._insert_task_run(params, given=run_id is not None)
        except self._db.integrity_errors as exc:
            raise _run_missing(job_run_id) from exc
        return record if run_id is not None else replace(record, run_id=new_id)

    def _insert_task_run(self, params: dict[str, Any], *, given: bool) -> int:
        if given:
            self._write(_TASK_RUNS.insert, params)
            return int(params["run_id"])
        if self._db.dialect.pyformat:
            # PostgreSQL: allocate and insert in one round trip.
            return int(self._all(_TASK_RUN_INSERT_WITH_ID, params)[0][0])
        with self.transaction():
            params["run_id"] = self._allocate("run_id", 1)
            self._write(_TASK_RUNS.insert, params)
        return int(params["run_id"])

    def update_task_run(self, task_run_id: int, /, **fields: Any) -> None:
        """Set ``fields`` (TaskRunRecord field names, except run_id) of the task run."""
        params = _TASK_RUNS.encode(fields)
        params["_key"] = task_run_id
        if not self._write(_TASK_RUNS.update_sql(tuple(fields)), params):
            raise _run_missing(task_run_id)

    def get_task_run(self, task_run_id: int) -> TaskRunRecord:
        row = self._one(_TASK_RUN_BY_ID, {"run_id": task_run_id})
        if row is None:
            raise _run_missing(task_run_id)
        return _TASK_RUNS.decode(row)

    def list_task_runs(self, job_run_id: int) -> list[TaskRunRecord]:
        """Every task run (all attempts, iterations and repairs) of the job run, by id."""
        rows = self._all(
            f"{_TASK_RUNS.select} WHERE job_run_id = :job_run_id ORDER BY run_id", {"job_run_id": job_run_id}
        )
        return [_TASK_RUNS.decode(row) for row in rows]

    # --- task values ----------------------------------------------------------------------------------

    def put_task_values(self, job_run_id: int, task_key: str, values: Mapping[str, Any]) -> None:
        """Replace the task values that task ``task_key`` of the job run set."""
        try:
            self._write(
                "INSERT INTO task_values (job_run_id, task_key, values_json) "
                "VALUES (:job_run_id, :task_key, :values_json) "
                "ON CONFLICT (job_run_id, task_key) DO UPDATE SET values_json = excluded.values_json",
                {"job_run_id": job_run_id, "task_key": task_key, "values_json": _dumps(dict(values))},
            )
        except self._db.integrity_errors as exc:
            raise _run_missing(job_run_id) from exc

    def get_task_values(self, job_run_id: int) -> dict[str, dict[str, Any]]:
        """``{task_key: {key: value}}`` of the job run."""
        rows = self._all(
            "SELECT task_key, values_json FROM task_values WHERE job_run_id = :job_run_id",
            {"job_run_id": job_run_id},
        )
        return {row[0]: _loads(row[1]) for row in rows}

    # --- repairs --------------------------------------------------------------------------------------

    def create_repair(self, run_id: int, *, now: int, type: str) -> RepairRecord:
        """Start a repair history entry (PENDING, started at ``now``)."""
        with self.transaction():
            repair = RepairRecord(
                repair_id=self._allocate("repair_id", 1),
                run_id=run_id,
                type=type,
                start_time=now,
                end_time=0,
                state=LifeCycleState.PENDING.value,
                result_state=None,
            )
            try:
                self._write(_REPAIRS.insert, _REPAIRS.encode(_record_values(repair)))
            except self._db.integrity_errors as exc:
                raise _run_missing(run_id) from exc
        return repair

    def update_repair(self, repair_id: int, /, **fields: Any) -> None:
        """Set ``fields`` (RepairRecord field names, except repair_id) of the repair."""
        params = _REPAIRS.encode(fields)
        params["_key"] = repair_id
        if not self._write(_REPAIRS.update_sql(tuple(fields)), params):
            raise NotFoundError(f"Repair {repair_id} does not exist.")

    def list_repairs(self, run_id: int) -> list[RepairRecord]:
        """The run's repair history, oldest first."""
        rows = self._all(f"{_REPAIRS.select} WHERE run_id = :run_id ORDER BY repair_id", {"run_id": run_id})
        return [_REPAIRS.decode(row) for row in rows]


def _job(row: Sequence[Any]) -> JobRecord:
    job_id, settings, created, updated, creator, bundle_key, source_path = row
    return JobRecord(job_id, _loads(settings), created, updated, creator, bundle_key, source_path)


def _record_values(record: Any) -> dict[str, Any]:
    return {f: getattr(record, f) for f in record.__dataclass_fields__}


def _admit(
    *, now: int, free: bool, queue_enabled: bool, max_concurrent_runs: int, driver: str | None
) -> dict[str, Any]:
    """The state fields of a new run: PENDING with a free slot, else QUEUED (queue on) or SKIPPED."""
    fields: dict[str, Any] = {
        "state": LifeCycleState.PENDING.value,
        "result_state": None,
        "state_message": "",
        "termination_code": None,
        "termination_type": None,
        "queue_reason": None,
        "start_time": 0,
        "end_time": 0,
        "queue_time": 0,
        "driver": None,
        "heartbeat_time": 0,
    }
    limit = f"the limit of {max_concurrent_runs} maximum concurrent runs has been reached."
    if free:
        fields.update(start_time=now, driver=driver, heartbeat_time=now if driver else 0)
    elif queue_enabled and max_concurrent_runs > 0:
        fields.update(
            state=LifeCycleState.QUEUED.value,
            state_message=f"Queued because {limit}",
            queue_reason=QueueDetailsCode.MAX_CONCURRENT_RUNS_REACHED.value,
            queue_time=now,
        )
    else:
        fields.update(
            state=LifeCycleState.SKIPPED.value,
            state_message=f"Skipping this run because {limit}",
            result_state=ResultState.MAXIMUM_CONCURRENT_RUNS_REACHED.value,
            termination_code=TerminationCode.MAX_CONCURRENT_RUNS_EXCEEDED.value,
            termination_type=TerminationType.CLIENT_ERROR.value,
            start_time=now,
            end_time=now,
        )
    return fields
