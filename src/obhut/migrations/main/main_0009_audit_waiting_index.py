"""access log: partial indexes for the positions and for the entries waiting to be sequenced

Revision ID: main_0009
Revises: main_0008
Create Date: 2026-11-24 06:00:00

The sequencer took its next batch through the positions' unique index (which also holds the waiting
entries, under NULL) and sorted every waiting entry: PostgreSQL spilled that sort to disk with a backlog of
50,000 while the table's statistics lagged behind its growth. Now the positions' index holds only the
sequenced entries, and a second index only the waiting ones, in the sequencer's order.

Building the indexes takes a lock on the access log (SQLite copies the table): with a large log, run the
upgrade in a maintenance window; requests that write log entries wait for it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "main_0009"
down_revision = "main_0008"
branch_labels = None
depends_on = None

_SEQUENCED, _WAITING = sa.text("seq IS NOT NULL"), sa.text("seq IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_audit_entries_workspace_id_seq", type_="unique")
        batch_op.create_index(
            "ix_audit_entries_seq",
            ["workspace_id", "seq"],
            unique=True,
            postgresql_where=_SEQUENCED,
            sqlite_where=_SEQUENCED,
        )
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
        batch_op.drop_index("ix_audit_entries_seq", postgresql_where=_SEQUENCED, sqlite_where=_SEQUENCED)
        batch_op.create_unique_constraint("uq_audit_entries_workspace_id_seq", ["workspace_id", "seq"])
