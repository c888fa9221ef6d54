"""The lakehouse catalog: catalogs, schemas, tables and volumes; a fresh store has ``workspace.default``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_SCHEMA_FK = (
    ["catalog_name", "schema_name"],
    ["catalog_schemas.catalog_name", "catalog_schemas.schema_name"],
)


def upgrade() -> None:
    now = int(time.time() * 1000)
    catalogs = op.create_table(
        "catalogs",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_catalogs")),
    )
    schemas = op.create_table(
        "catalog_schemas",
        sa.Column("catalog_name", sa.Text(), nullable=False),
        sa.Column("schema_name", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["catalog_name"],
            ["catalogs.name"],
            name=op.f("fk_catalog_schemas_catalog_name_catalogs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("catalog_name", "schema_name", name=op.f("pk_catalog_schemas")),
    )
    op.create_table(
        "catalog_tables",
        sa.Column("catalog_name", sa.Text(), nullable=False),
        sa.Column("schema_name", sa.Text(), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("table_type", sa.Text(), nullable=False),
        sa.Column("data_source_format", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("created_time", sa.BigInteger(), nullable=False),
        sa.Column("updated_time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            *_SCHEMA_FK, name=op.f("fk_catalog_tables_catalog_name_catalog_schemas"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("catalog_name", "schema_name", "table_name", name=op.f("pk_catalog_tables")),
    )
    op.create_table(
        "catalog_volumes",
        sa.Column("catalog_name", sa.Text(), nullable=False),
        sa.Column("schema_name", sa.Text(), nullable=False),
        sa.Column("volume_name", sa.Text(), nullable=False),
        sa.Column("volume_type", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            *_SCHEMA_FK, name=op.f("fk_catalog_volumes_catalog_name_catalog_schemas"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "catalog_name", "schema_name", "volume_name", name=op.f("pk_catalog_volumes")
        ),
    )
    op.bulk_insert(catalogs, [{"name": "workspace", "comment": "", "created_time": now}])
    op.bulk_insert(
        schemas, [{"catalog_name": "workspace", "schema_name": "default", "comment": "", "created_time": now}]
    )


def downgrade() -> None:
    op.drop_table("catalog_volumes")
    op.drop_table("catalog_tables")
    op.drop_table("catalog_schemas")
    op.drop_table("catalogs")
