"""customers: an index of the erased rows

Revision ID: main_0012
Revises: main_0011
Create Date: 2026-11-24 22:00:00

A retention survey takes its windows of customers from the primary key's index alone and counts the erased
rows (kept for a legal duty) out of them through this index, instead of reading every row's erasure time.
It holds only erased rows, so it costs nothing to the writes of live customers.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "main_0012"
down_revision = "main_0011"
branch_labels = None
depends_on = None


_INDEX = "ix_customers_erased"
_WHERE = sa.text("erased_at IS NOT NULL")


def upgrade() -> None:
    op.create_index(_INDEX, "customers", ["workspace_id", "id"], sqlite_where=_WHERE, postgresql_where=_WHERE)


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="customers")
