"""initial sensitive store schema

Revision ID: sensitive_0001
Revises:
Create Date: 2026-11-24 12:00:00

The sensitive store: the workspace keys it is sealed under (wrapped by root keys of their own), its records, and
the holds backups put on deleting them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from obhut.kit.db import UTCDateTime

revision = "sensitive_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sensitive_keys",
        sa.Column("workspace_id", sa.String(length=63), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("key_ref", sa.String(length=200), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_sensitive_keys")),
    )
    op.create_table(
        "sensitive_holds",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sensitive_holds")),
    )
    op.create_table(
        "sensitive_records",
        sa.Column("workspace_id", sa.String(length=63), nullable=False),
        sa.Column("ref", sa.LargeBinary(), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "ref", name=op.f("pk_sensitive_records")),
    )
    op.create_index(
        op.f("ix_sensitive_records_workspace_id_created_at"), "sensitive_records", ["workspace_id", "created_at"]
    )
    op.create_index(
        op.f("ix_sensitive_records_workspace_id_subject_id"), "sensitive_records", ["workspace_id", "subject_id"]
    )


def downgrade() -> None:
    op.drop_table("sensitive_records")
    op.drop_table("sensitive_holds")
    op.drop_table("sensitive_keys")
