"""Initial schema: jobs, runs, task runs, task values, repairs, idempotency tokens and id counters.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger()
_TIME = sa.BigInteger()


def upgrade() -> None:
    counters = op.create_table(
        "counters",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    op.bulk_insert(counters, [{"name": name, "value": 0} for name in ("job_id", "run_id", "repair_id")])
    op.create_table(
        "idempotency_tokens",
        sa.Column("job_key", _ID, nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("run_id", _ID, nullable=False),
        sa.PrimaryKeyConstraint("job_key", "token", name=op.f("pk_idempotency_tokens")),
    )
    _create_jobs()
    _create_runs()
    _create_task_runs()
    op.create_table(
        "task_values",
        sa.Column("job_run_id", _ID, nullable=False),
        sa.Column("task_key", sa.Text(), nullable=False),
        sa.Column("values_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_run_id"], ["runs.run_id"], name=op.f("fk_task_values_job_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_run_id", "task_key", name=op.f("pk_task_values")),
    )
    op.create_table(
        "repairs",
        sa.Column("repair_id", _ID, autoincrement=False, nullable=False),
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("start_time", _TIME, nullable=False),
        sa.Column("end_time", _TIME, nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("result_state", sa.Text(), nullable=True),
        sa.Column("task_run_ids", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_repairs_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("repair_id", name=op.f("pk_repairs")),
    )
    op.create_index(op.f("ix_repairs_run_id"), "repairs", ["run_id"])


def _create_jobs() -> None:
    op.create_table(
        "jobs",
        sa.Column("job_id", _ID, autoincrement=False, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_lower", sa.Text(), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("created_time", _TIME, nullable=False),
        sa.Column("updated_time", _TIME, nullable=False),
        sa.Column("creator_user_name", sa.Text(), nullable=False),
        sa.Column("bundle_key", sa.Text(), nullable=True),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("bundle_key", name=op.f("uq_jobs_bundle_key")),
    )
    op.create_index(op.f("ix_jobs_name_lower"), "jobs", ["name_lower"])


def _create_runs() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", _ID, autoincrement=False, nullable=False),
        sa.Column("job_id", _ID, nullable=True),
        sa.Column("run_name", sa.Text(), nullable=False),
        sa.Column("run_type", sa.Text(), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("result_state", sa.Text(), nullable=True),
        sa.Column("state_message", sa.Text(), nullable=False),
        sa.Column("termination_code", sa.Text(), nullable=True),
        sa.Column("termination_type", sa.Text(), nullable=True),
        sa.Column("queue_reason", sa.Text(), nullable=True),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("job_parameters", sa.Text(), nullable=False),
        sa.Column("overriding_parameters", sa.Text(), nullable=False),
        sa.Column("start_time", _TIME, nullable=False),
        sa.Column("end_time", _TIME, nullable=False),
        sa.Column("queue_time", _TIME, nullable=False),
        sa.Column("created_time", _TIME, nullable=False),
        sa.Column("idempotency_token", sa.Text(), nullable=True),
        sa.Column("parent_run_id", _ID, nullable=True),
        sa.Column("trigger_info", sa.Text(), nullable=False),
        sa.Column("driver", sa.Text(), nullable=True),
        sa.Column("heartbeat_time", _TIME, nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("git_commit", sa.Text(), nullable=True),
        sa.Column("repair_count", sa.Integer(), nullable=False),
        sa.Column("only_tasks", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_job_id_state"), "runs", ["job_id", "state"])
    op.create_index(op.f("ix_runs_state"), "runs", ["state"])
    op.create_index(op.f("ix_runs_job_id_run_id"), "runs", ["job_id", "run_id"])
    op.create_index(op.f("ix_runs_parent_run_id"), "runs", ["parent_run_id"])


def _create_task_runs() -> None:
    op.create_table(
        "task_runs",
        sa.Column("run_id", _ID, autoincrement=False, nullable=False),
        sa.Column("job_run_id", _ID, nullable=False),
        sa.Column("task_key", sa.Text(), nullable=False),
        sa.Column("attempt_number", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("result_state", sa.Text(), nullable=True),
        sa.Column("state_message", sa.Text(), nullable=False),
        sa.Column("start_time", _TIME, nullable=False),
        sa.Column("end_time", _TIME, nullable=False),
        sa.Column("created_time", _TIME, nullable=False),
        sa.Column("original_attempt_run_id", _ID, nullable=True),
        sa.Column("repair_id", _ID, nullable=False),
        sa.Column("parent_task_run_id", _ID, nullable=True),
        sa.Column("iteration", sa.Integer(), nullable=True),
        sa.Column("resolved_values", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_trace", sa.Text(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("attempt_dir", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("output", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_run_id"], ["runs.run_id"], name=op.f("fk_task_runs_job_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_task_runs")),
    )
    op.create_index(op.f("ix_task_runs_job_run_id"), "task_runs", ["job_run_id"])


def downgrade() -> None:
    for table in ("repairs", "task_values", "task_runs", "runs", "jobs", "idempotency_tokens", "counters"):
        op.drop_table(table)
