"""SQLite: an online copy with the backup API (consistent while the service writes; in WAL mode readers
and the copy do not block writers), `PRAGMA integrity_check` to prove a copy, atomic replace to restore."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

from obhut.retention.ports import BackupError, Inspection


@contextlib.contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(path, timeout=30)
    try:
        yield connection
    finally:
        connection.close()


def _revision(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no such table: a database never migrated
        return None
    return str(row[0]) if row else None


class SqliteDatabase:
    kind = "sqlite"

    def __init__(self, url: str) -> None:
        database = make_url(url).database
        self.path = Path(database) if database and database != ":memory:" else None

    def _live(self) -> Path:
        if self.path is None or not self.path.is_file():
            raise BackupError(f"no SQLite database at {self.path}; check OBHUT_DATA_DIR or the database URL")
        return self.path

    def revision(self) -> str | None:
        with _connect(self._live()) as connection:
            return _revision(connection)

    def dump(self, target: Path) -> None:
        with _connect(self._live()) as source, _connect(target) as copy:
            source.backup(copy)  # all pages in one step: one read snapshot, so the copy is consistent

    def inspect(self, dump: Path, label: str) -> Inspection:
        try:
            with _connect(dump) as connection:
                problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
                if problems != ["ok"]:
                    raise BackupError(f"{label}: the SQLite integrity check failed: {'; '.join(problems[:3])}")
                tables = [
                    row[0]
                    for row in connection.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
                    )
                ]
                counts = {
                    table: int(connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])  # noqa: S608 - names from sqlite_master
                    for table in tables
                }
                return Inspection(_revision(connection), counts)
        except sqlite3.DatabaseError as error:
            raise BackupError(f"{label}: not a usable SQLite database ({error})") from None

    def restore(self, dump: Path) -> None:
        """A copy beside the live file, flushed, then renamed over it; the live file's WAL is checkpointed
        and removed first, since a stale WAL beside the restored file would be replayed into it."""
        if self.path is None:
            raise BackupError("the configured SQLite database is in memory; there is nowhere to restore to")
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        staged = self.path.with_name(f".{self.path.name}.restoring")
        shutil.copyfile(dump, staged)
        staged.chmod(0o600)
        with staged.open("rb+") as handle:
            os.fsync(handle.fileno())
        if self.path.exists():
            with _connect(self.path) as live:
                live.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        staged.replace(self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
