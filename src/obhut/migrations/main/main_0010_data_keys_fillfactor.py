"""vault: leave room in the data keys' pages (PostgreSQL), so that a shard move updates them in place

Revision ID: main_0010
Revises: main_0009
Create Date: 2026-11-24 09:10:00

An erasure re-wraps every other data key of the customer's shard (a purge: most of the workspace's). Their
indexed columns keep their values, so PostgreSQL can update each row within its page (a HOT update: no new
index entries) where the page has room; with full pages every re-wrap wrote a new entry into both indexes.
Pages written from now on keep 30 % free; `VACUUM FULL vault_data_keys` repacks the older ones too. SQLite has
no such setting: nothing changes there.
"""

from __future__ import annotations

from alembic import op

revision = "main_0010"
down_revision = "main_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE vault_data_keys SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE vault_data_keys RESET (fillfactor)")
