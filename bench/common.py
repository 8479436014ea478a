"""Shared set-up for benchmarks: throwaway SQLite files or PostgreSQL databases, a container, a workspace."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import Column, Index, LargeBinary, MetaData, String, Table, Text

from obhut import migrations
from obhut.container import Container, build
from obhut.kit.db import unit_of_work
from obhut.kit.settings import Settings
from obhut.workspaces import service as workspaces

PG = "postgresql://postgres@127.0.0.1:5432"
WORKSPACE = "bench"

plain_metadata = MetaData()
plain_customers = Table(
    "plain_customers",
    plain_metadata,
    Column("workspace_id", String(63), primary_key=True),
    Column("id", String(36), primary_key=True),
    *(
        Column(name, Text)
        for name in (
            "external_ref",
            "given_name",
            "family_name",
            "birth_date",
            "email",
            "phone",
            "postal_address",
            "iban",
            "notes",
        )
    ),
    Column("spare", LargeBinary),
    Index("ix_plain_external_ref", "workspace_id", "external_ref", unique=True),
    Index("ix_plain_email", "workspace_id", "email"),
    Index("ix_plain_phone", "workspace_id", "phone"),
    Index("ix_plain_iban", "workspace_id", "iban"),
    Index("ix_plain_family_name", "workspace_id", "family_name"),
)


@contextmanager
def databases(backend: str, folder: Path, *, sensitive: str = "") -> Iterator[Settings]:
    """Fresh, migrated databases for one benchmark run; PostgreSQL ones are dropped afterwards. `sensitive`: the
    categories to keep in a sensitive store of their own (none: no such store)."""
    kinds = ("main", "keys", "sensitive") if sensitive else ("main", "keys")
    if backend == "sqlite":
        extra = {"sensitive_url": f"sqlite:///{folder / 'sensitive.db'}"} if sensitive else {}
        settings = Settings(data_dir=folder, key_file=folder / "master.key", sensitive_categories=sensitive, **extra)
        migrations.upgrade(settings)
        yield settings
        return
    names = {kind: f"obhut_bench_{kind}_{uuid.uuid4().hex[:8]}" for kind in kinds}
    with psycopg.connect(f"{PG}/test", autocommit=True) as admin:
        for name in names.values():
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        settings = Settings(
            data_dir=folder,
            key_file=folder / "master.key",
            database_url=f"{PG}/{names['main']}",
            keystore_url=f"{PG}/{names['keys']}",
            sensitive_url=f"{PG}/{names['sensitive']}" if sensitive else "",
            sensitive_categories=sensitive,
        )
        migrations.upgrade(settings)
        yield settings
    finally:
        with psycopg.connect(f"{PG}/test", autocommit=True) as admin:
            for name in names.values():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settle(built: Container) -> None:
    """Starts a timed phase from a settled machine: SQLite moves its write-ahead log into the database file
    now; PostgreSQL vacuums what the set-up wrote, as autovacuum would have long since in a database in use (so
    that its pass does not run beside the timed phase, and the visibility map is as a steady database has it; a
    CHECKPOINT would make the next writes log whole pages); and the operating system writes what it holds
    unwritten (the set-up's pages) to disk, so that the phase does not share the machine with either."""
    for engine in (built.engine, built.keystore_engine):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                connection.exec_driver_sql("VACUUM (ANALYZE)")
    os.sync()


@contextmanager
def container(settings: Settings) -> Iterator[Container]:
    built = build(settings)
    with unit_of_work(built.sessions) as session:
        workspaces.create(session, built.vault, WORKSPACE)
    plain_metadata.create_all(built.engine)
    try:
        yield built
    finally:
        built.close()
