"""customers: a reference to the customer's record in the sensitive store

Revision ID: main_0011
Revises: main_0010
Create Date: 2026-11-24 12:00:00

Where a workspace keeps sensitive categories in a database of their own, the customer's row holds a random
reference to their record there instead of those fields' ciphertext.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "main_0011"
down_revision = "main_0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("sensitive_ref", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("sensitive_ref")
