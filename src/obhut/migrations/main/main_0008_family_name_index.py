"""family name blind index

Revision ID: main_0008
Revises: main_0007
Create Date: 2026-11-24 01:20:00

Adds the column empty: existing customers become searchable by name once `obhut customers reindex` (or the
worker's reindex job) has filled it; it needs the workspace keys, which a migration does not hold.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "main_0008"
down_revision = "main_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("family_name_index", sa.LargeBinary(length=16), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_customers_workspace_id_family_name_index"), ["workspace_id", "family_name_index"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_workspace_id_family_name_index"))
        batch_op.drop_column("family_name_index")
