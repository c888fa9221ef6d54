"""Identity: the user an API token acts as, who started a run, and the store's workspace id.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("user_name", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("creator_user_name", sa.Text(), nullable=False, server_default=""))
    info = op.create_table(
        "workspace_info",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_workspace_info")),
    )
    # 16 digits, never starting with 0: the shape of a Databricks workspace id.
    workspace_id = 10**15 + secrets.randbelow(9 * 10**15)
    op.bulk_insert(info, [{"name": "workspace_id", "value": str(workspace_id)}])


def downgrade() -> None:
    op.drop_table("workspace_info")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("creator_user_name")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("user_name")
