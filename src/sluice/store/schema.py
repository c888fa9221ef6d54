"""The store's schema: the source of truth that Alembic migrations create and upgrade.

Imported only by the migrations and by tests (SQLAlchemy costs ~350 ms to import): the store's queries are
hand-written SQL in ``store.py`` that must name exactly these tables and columns. A test checks that the
migrated database matches this ``metadata`` on SQLite and PostgreSQL.

Conventions: ids and epoch-millisecond times are BIGINT; JSON documents are TEXT (encoded and decoded by
the store); every table and column name equals the field name of its record in ``records.py``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

#: Id sequences: ``job_id``, ``run_id`` (job runs AND task runs, one global sequence) and ``repair_id``.
#: Allocation is ``UPDATE counters SET value = value + n WHERE name = ? RETURNING value``.
counters = Table(
    "counters",
    metadata,
    Column("name", Text, nullable=False),
    Column("value", BigInteger, nullable=False),
    PrimaryKeyConstraint("name"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", BigInteger, nullable=False, autoincrement=False),
    #: ``settings["name"]`` and its ``str.lower()``: the exact, case-insensitive name filter of jobs/list.
    Column("name", Text, nullable=False),
    Column("name_lower", Text, nullable=False),
    Column("settings", Text, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    Column("updated_time", BigInteger, nullable=False),
    Column("creator_user_name", Text, nullable=False),
    Column("bundle_key", Text, nullable=True),
    Column("source_path", Text, nullable=True),
    PrimaryKeyConstraint("job_id"),
    UniqueConstraint("bundle_key"),
    Index(None, "name_lower"),
)

#: Job runs. ``job_id`` has no foreign key on purpose: a deleted job's runs stay readable.
runs = Table(
    "runs",
    metadata,
    Column("run_id", BigInteger, nullable=False, autoincrement=False),
    Column("job_id", BigInteger, nullable=True),
    Column("run_name", Text, nullable=False),
    Column("run_type", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("result_state", Text, nullable=True),
    Column("state_message", Text, nullable=False),
    Column("termination_code", Text, nullable=True),
    Column("termination_type", Text, nullable=True),
    Column("queue_reason", Text, nullable=True),
    Column("settings", Text, nullable=False),
    Column("job_parameters", Text, nullable=False),
    Column("overriding_parameters", Text, nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=False),
    Column("queue_time", BigInteger, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    Column("idempotency_token", Text, nullable=True),
    Column("parent_run_id", BigInteger, nullable=True),
    Column("trigger_info", Text, nullable=False),
    Column("driver", Text, nullable=True),
    Column("heartbeat_time", BigInteger, nullable=False),
    Column("cancel_requested", Boolean, nullable=False),
    Column("git_commit", Text, nullable=True),
    Column("repair_count", Integer, nullable=False),
    Column("only_tasks", Text, nullable=True),
    PrimaryKeyConstraint("run_id"),
    # Counting a job's active runs (under the job's lock) and the active runs of the whole store.
    Index(None, "job_id", "state"),
    Index(None, "state"),
    # Listing a job's runs newest first.
    Index(None, "job_id", "run_id"),
    # Cancel cascades to child runs.
    Index(None, "parent_run_id"),
)

#: ``idempotency_token`` -> run, per job (``job_key`` is the job id, 0 for runs without a job). Kept when the
#: run is deleted, so a reused token of a deleted run is an error instead of a silent new run. The primary
#: key is the idempotency-token index and makes concurrent submits with one token create one run.
idempotency_tokens = Table(
    "idempotency_tokens",
    metadata,
    Column("job_key", BigInteger, nullable=False),
    Column("token", Text, nullable=False),
    Column("run_id", BigInteger, nullable=False),
    PrimaryKeyConstraint("job_key", "token"),
)

#: Task runs: one row per attempt (and per for-each iteration attempt).
task_runs = Table(
    "task_runs",
    metadata,
    Column("run_id", BigInteger, nullable=False, autoincrement=False),
    Column("job_run_id", BigInteger, ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("task_key", Text, nullable=False),
    Column("attempt_number", Integer, nullable=False),
    Column("state", Text, nullable=False),
    Column("result_state", Text, nullable=True),
    Column("state_message", Text, nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    Column("original_attempt_run_id", BigInteger, nullable=True),
    Column("repair_id", BigInteger, nullable=False),
    Column("parent_task_run_id", BigInteger, nullable=True),
    Column("iteration", Integer, nullable=True),
    Column("resolved_values", Text, nullable=False),
    Column("error", Text, nullable=True),
    Column("error_trace", Text, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("pid", Integer, nullable=True),
    Column("attempt_dir", Text, nullable=True),
    Column("outcome", Text, nullable=True),
    Column("output", Text, nullable=False),
    PrimaryKeyConstraint("run_id"),
    Index(None, "job_run_id"),
)

#: Task values (``dbutils.jobs.taskValues``): one JSON object per (job run, task key), replaced whole.
task_values = Table(
    "task_values",
    metadata,
    Column("job_run_id", BigInteger, ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("task_key", Text, nullable=False),
    Column("values_json", Text, nullable=False),
    PrimaryKeyConstraint("job_run_id", "task_key"),
)

#: Repair history of a job run (``repair_history[]``).
repairs = Table(
    "repairs",
    metadata,
    Column("repair_id", BigInteger, nullable=False, autoincrement=False),
    Column("run_id", BigInteger, ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("type", Text, nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=False),
    Column("state", Text, nullable=False),
    Column("result_state", Text, nullable=True),
    Column("task_run_ids", Text, nullable=False),
    PrimaryKeyConstraint("repair_id"),
    Index(None, "run_id"),
)

# --- secrets (migration 0002) ---

#: Secret scopes (``dbutils.secrets``, ``sluice secrets``). Names follow Databricks' rule (letters, digits,
#: ``-``, ``_``, ``.``; at most 128 characters).
secret_scopes = Table(
    "secret_scopes",
    metadata,
    Column("name", Text, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    PrimaryKeyConstraint("name"),
)

#: Secret values, encrypted (AES-256-GCM; docs/adr/0006-secrets-at-rest.md): ``value`` is base64 of nonce +
#: ciphertext, ``key_id`` the fingerprint of the key that encrypted it (the key itself is never stored here).
secrets = Table(
    "secrets",
    metadata,
    Column("scope", Text, ForeignKey("secret_scopes.name", ondelete="CASCADE"), nullable=False),
    Column("key", Text, nullable=False),
    Column("value", Text, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
    PrimaryKeyConstraint("scope", "key"),
)
