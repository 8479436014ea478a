"""access log: index of the entries waiting to be sequenced

Revision ID: main_0009
Revises: main_0008
Create Date: 2026-11-24 06:00:00

The sequencer took its next batch by sorting every waiting entry (PostgreSQL spilled the sort to disk with a
backlog of 50,000); a partial index holds only the waiting entries, already in the sequencer's order.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "main_0009"
down_revision = "main_0008"
branch_labels = None
depends_on = None

_WAITING = sa.text("seq IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_entries_waiting",
            ["workspace_id", "at", "entry_id"],
            unique=False,
            postgresql_where=_WAITING,
            sqlite_where=_WAITING,
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_waiting", postgresql_where=_WAITING, sqlite_where=_WAITING)
