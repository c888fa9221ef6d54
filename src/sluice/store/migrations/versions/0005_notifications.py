"""Notifications: destinations, the outbox with its attempts, scan cursors, an index on runs.end_time.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_TIME = sa.BigInteger()


def upgrade() -> None:
    op.create_table(
        "notification_destinations",
        sa.Column("destination_id", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("created_time", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("destination_id", name=op.f("pk_notification_destinations")),
    )
    op.create_table(
        "notifications",
        sa.Column("notification_key", sa.Text(), nullable=False),
        sa.Column("job_run_id", sa.BigInteger(), nullable=False),
        sa.Column("task_run_id", sa.BigInteger(), nullable=True),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_time", _TIME, nullable=False),
        sa.Column("created_time", _TIME, nullable=False),
        sa.Column("sent_time", _TIME, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("notification_key", name=op.f("pk_notifications")),
    )
    op.create_index(
        op.f("ix_notifications_state_next_attempt_time"), "notifications", ["state", "next_attempt_time"]
    )
    op.create_index(op.f("ix_notifications_job_run_id"), "notifications", ["job_run_id"])
    op.create_table(
        "notification_attempts",
        sa.Column("notification_key", sa.Text(), nullable=False),
        sa.Column("attempt_number", sa.Integer(), nullable=False),
        sa.Column("start_time", _TIME, nullable=False),
        sa.Column("end_time", _TIME, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["notification_key"],
            ["notifications.notification_key"],
            name=op.f("fk_notification_attempts_notification_key_notifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("notification_key", "attempt_number", name=op.f("pk_notification_attempts")),
    )
    op.create_table(
        "notification_cursors",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_notification_cursors")),
    )
    op.create_index(op.f("ix_runs_end_time"), "runs", ["end_time"])


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_end_time"), table_name="runs")
    for table in (
        "notification_cursors",
        "notification_attempts",
        "notifications",
        "notification_destinations",
    ):
        op.drop_table(table)
