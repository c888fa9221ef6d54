"""Catalog SQL functions (``CREATE FUNCTION ... RETURN expr``), stored so later tasks can call them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_functions",
        sa.Column("catalog_name", sa.Text(), nullable=False),
        sa.Column("schema_name", sa.Text(), nullable=False),
        sa.Column("function_name", sa.Text(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("created_time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["catalog_name", "schema_name"],
            ["catalog_schemas.catalog_name", "catalog_schemas.schema_name"],
            name=op.f("fk_catalog_functions_catalog_name_catalog_schemas"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "catalog_name", "schema_name", "function_name", name=op.f("pk_catalog_functions")
        ),
    )


def downgrade() -> None:
    op.drop_table("catalog_functions")
