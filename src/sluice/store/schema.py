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
    ForeignKeyConstraint,
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
    # migration 0007: who started the run; '' before it
    Column("creator_user_name", Text, nullable=False, server_default=""),
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

# --- api_tokens (migration 0003) ---

#: Bearer tokens of ``sluice serve`` (``dapi...``). Only the SHA-256 of a token's value is kept: the value
#: is shown once, at creation. ``expiry_time`` is -1 for a token that never expires; a revoked token keeps
#: its row (``revoked_time`` > 0) so ``tokens list`` can show it.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", Text, nullable=False),
    Column("token_hash", Text, nullable=False),
    Column("comment", Text, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("expiry_time", BigInteger, nullable=False),
    Column("revoked_time", BigInteger, nullable=False),
    # migration 0007: the user the token acts as (creator_user_name, current_user.me()); '' before it
    Column("user_name", Text, nullable=False, server_default=""),
    PrimaryKeyConstraint("token_id"),
    UniqueConstraint("token_hash"),
)

# --- workspace_info (migration 0007) ---

#: Facts of this store as a workspace, by name. ``workspace_id``: a random 16-digit number drawn when the
#: store was created, what Databricks clients read as the workspace (org) id.
workspace_info = Table(
    "workspace_info",
    metadata,
    Column("name", Text, nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("name"),
)

# --- scheduler (migration 0004) ---

#: One row per (job, trigger kind) the scheduler watches: ``kind`` is ``schedule``, ``periodic``,
#: ``file_arrival``, ``table_update`` or ``continuous``; ``config`` the fingerprint of the settings that
#: reset it (expression, zone, url, tables, pause status: a change starts the trigger afresh from now);
#: ``state`` its JSON cursor (last slot, debounce timers ...). ``version`` is bumped by every write:
#: schedulers change a row only if it still has the version they read (compare-and-set), in the same
#: transaction as the run they create, so two schedulers never act twice on one observation.
scheduler_triggers = Table(
    "scheduler_triggers",
    metadata,
    Column("job_id", BigInteger, nullable=False, autoincrement=False),
    Column("kind", Text, nullable=False),
    Column("config", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("updated_time", BigInteger, nullable=False),
    PrimaryKeyConstraint("job_id", "kind"),
)

#: Fired slots: the primary key (job, slot time) makes "one run per slot" a database fact. Inserted in the
#: transaction that creates the run, so neither a restart nor a second scheduler fires a slot twice.
#: ``slot_time`` is the scheduled instant (cron and periodic) or the decision time (event triggers).
scheduler_slots = Table(
    "scheduler_slots",
    metadata,
    Column("job_id", BigInteger, nullable=False, autoincrement=False),
    Column("slot_time", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("run_id", BigInteger, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    PrimaryKeyConstraint("job_id", "slot_time"),
)

#: Files a file-arrival trigger has seen (path relative to its url): only files not in here are new.
scheduler_files = Table(
    "scheduler_files",
    metadata,
    Column("job_id", BigInteger, nullable=False, autoincrement=False),
    Column("path", Text, nullable=False),
    PrimaryKeyConstraint("job_id", "path"),
)

# --- notifications (migration 0005) ---

#: Webhook targets that job settings name by id (``webhook_notifications.on_failure: [{id: ...}]``), like
#: Databricks notification destinations. ``url`` is a secret (Slack's incoming-webhook URLs are).
notification_destinations = Table(
    "notification_destinations",
    metadata,
    Column("destination_id", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    #: ``slack`` or ``webhook``.
    Column("type", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    PrimaryKeyConstraint("destination_id"),
)

#: The outbox: one row per (job run or task run, event, destination), committed before it is sent. The key
#: spells those parts, so deriving the same event twice records it once. ``facts`` is the event as JSON
#: (job, run, task, result, message, times), rendered when sent: a deleted run's message still goes out.
notifications = Table(
    "notifications",
    metadata,
    Column("notification_key", Text, nullable=False),
    Column("job_run_id", BigInteger, nullable=False),
    Column("task_run_id", BigInteger, nullable=True),
    Column("event", Text, nullable=False),
    #: ``email`` (destination = the address) or ``webhook`` (destination = a destination id).
    Column("channel", Text, nullable=False),
    Column("destination", Text, nullable=False),
    Column("facts", Text, nullable=False),
    #: PENDING (to send at ``next_attempt_time``; a claimed row's lease), SENT or FAILED (gave up).
    Column("state", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_time", BigInteger, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    Column("sent_time", BigInteger, nullable=False),
    Column("last_error", Text, nullable=True),
    PrimaryKeyConstraint("notification_key"),
    Index(None, "state", "next_attempt_time"),
    Index(None, "job_run_id"),
)

#: Every delivery attempt's outcome (a killed sender's attempt has none: see ADR 0009).
notification_attempts = Table(
    "notification_attempts",
    metadata,
    Column(
        "notification_key",
        Text,
        ForeignKey("notifications.notification_key", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attempt_number", Integer, nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error", Text, nullable=True),
    PrimaryKeyConstraint("notification_key", "attempt_number"),
)

#: Watermarks of the notifier's scans (``runs_end``: runs that ended at or after it were scanned).
notification_cursors = Table(
    "notification_cursors",
    metadata,
    Column("name", Text, nullable=False),
    Column("value", BigInteger, nullable=False),
    PrimaryKeyConstraint("name"),
)

#: Added by migration 0005 to an existing table: the notifier finds runs that ended since its watermark.
Index("ix_runs_end_time", runs.c.end_time)


# --- catalog (migration 0006) ---

#: The lakehouse catalog (``sluice.store.catalog``): names are stored lower-case (Databricks names are
#: case-insensitive). A fresh store has catalog ``workspace`` with schema ``default``.
catalogs = Table(
    "catalogs",
    metadata,
    Column("name", Text, nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    PrimaryKeyConstraint("name"),
)

catalog_schemas = Table(
    "catalog_schemas",
    metadata,
    Column("catalog_name", Text, ForeignKey("catalogs.name", ondelete="CASCADE"), nullable=False),
    Column("schema_name", Text, nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    PrimaryKeyConstraint("catalog_name", "schema_name"),
)

#: Tables: every one is a directory (``location``, Delta unless ``data_source_format`` says otherwise),
#: deterministic under the warehouse root unless the user gave a path (``table_type`` EXTERNAL).
catalog_tables = Table(
    "catalog_tables",
    metadata,
    Column("catalog_name", Text, nullable=False),
    Column("schema_name", Text, nullable=False),
    Column("table_name", Text, nullable=False),
    Column("table_type", Text, nullable=False),
    Column("data_source_format", Text, nullable=False),
    Column("location", Text, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    Column("updated_time", BigInteger, nullable=False),
    PrimaryKeyConstraint("catalog_name", "schema_name", "table_name"),
    ForeignKeyConstraint(
        ["catalog_name", "schema_name"],
        ["catalog_schemas.catalog_name", "catalog_schemas.schema_name"],
        ondelete="CASCADE",
    ),
)

#: Volumes: ``/Volumes/<catalog>/<schema>/<volume>`` is the directory ``location``.
catalog_volumes = Table(
    "catalog_volumes",
    metadata,
    Column("catalog_name", Text, nullable=False),
    Column("schema_name", Text, nullable=False),
    Column("volume_name", Text, nullable=False),
    Column("volume_type", Text, nullable=False),
    Column("location", Text, nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    PrimaryKeyConstraint("catalog_name", "schema_name", "volume_name"),
    ForeignKeyConstraint(
        ["catalog_name", "schema_name"],
        ["catalog_schemas.catalog_name", "catalog_schemas.schema_name"],
        ondelete="CASCADE",
    ),
)

#: SQL functions (``CREATE FUNCTION f(x INT) RETURNS INT RETURN x + 1``): ``definition`` is the JSON of
#: :class:`sluice.catalog.functions.SqlFunction`; Sluice expands calls in the SQL text.
catalog_functions = Table(
    "catalog_functions",
    metadata,
    Column("catalog_name", Text, nullable=False),
    Column("schema_name", Text, nullable=False),
    Column("function_name", Text, nullable=False),
    Column("definition", Text, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    PrimaryKeyConstraint("catalog_name", "schema_name", "function_name"),
    ForeignKeyConstraint(
        ["catalog_name", "schema_name"],
        ["catalog_schemas.catalog_name", "catalog_schemas.schema_name"],
        ondelete="CASCADE",
    ),
)
