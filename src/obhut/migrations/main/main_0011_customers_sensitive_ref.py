"""customers: a reference to the customer's record in the sensitive store

Revision ID: main_0011
Revises: main_0010
Create Date: 2026-11-24 12:00:00

Where a workspace keeps sensitive categories in a database of their own, the customer's row holds a random
reference to their record there instead of those fields' ciphertext (indexed where set: the sweep asks which
references rows hold).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "main_0011"
down_revision = "main_0010"
branch_labels = None
depends_on = None


_INDEX = "ix_customers_workspace_id_sensitive_ref"
_WHERE = sa.text("sensitive_ref IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("sensitive_ref", sa.LargeBinary(), nullable=True))
    op.create_index(
        _INDEX, "customers", ["workspace_id", "sensitive_ref"], sqlite_where=_WHERE, postgresql_where=_WHERE
    )


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="customers")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("sensitive_ref")
