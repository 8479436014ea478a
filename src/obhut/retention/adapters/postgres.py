"""PostgreSQL: the real `pg_dump -Fc` (one snapshot, so consistent while the service writes), proved by
`pg_restore` into a scratch database, restored with `pg_restore --clean` in one transaction.

The tools get a libpq URL without the password; the password travels in PGPASSWORD, so it is not on the
process list."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from obhut.retention.ports import BackupError, Inspection

_TOOL_DIRS = ("/usr/bin", "/usr/lib/postgresql/15/bin")


def _tool(name: str) -> str:
    found = shutil.which(name) or next((str(Path(d) / name) for d in _TOOL_DIRS if (Path(d) / name).is_file()), None)
    if found is None:
        raise BackupError(f"{name} is not installed; install the PostgreSQL client tools (version 15 or newer)")
    return found


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise BackupError(f"{what} failed: {' / '.join(lines[-3:]) or f'exit status {result.returncode}'}")


def _inspect(connection: psycopg.Connection[tuple[object, ...]]) -> Inspection:
    tables = [
        str(row[0])
        for row in connection.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name"
        )
    ]
    counts: dict[str, int] = {}
    for table in tables:
        row = connection.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        counts[table] = int(str(row[0])) if row else 0
    revision = None
    if "alembic_version" in counts:
        found = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = str(found[0]) if found else None
    return Inspection(revision, counts)


class PostgresDatabase:
    kind = "postgresql"

    def __init__(self, url: str) -> None:
        self._url = make_url(url)
        self._libpq, self._env = _libpq(self._url)

    def _connect(self, database: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
        target = self._url if database is None else self._url.set(database=database)
        libpq, _ = _libpq(target)
        password = str(target.password) if target.password is not None else None
        try:
            return psycopg.connect(libpq, password=password, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as error:
            raise BackupError(
                f"cannot connect to PostgreSQL database '{target.database}' ({type(error).__name__})"
            ) from None

    def revision(self) -> str | None:
        with self._connect() as connection:
            return _inspect(connection).revision

    def dump(self, target: Path) -> None:
        command = [_tool("pg_dump"), "--format=custom", "--file", str(target), "--dbname", self._libpq]
        _run(command, self._env, f"pg_dump of database '{self._url.database}'")

    def inspect(self, dump: Path, label: str) -> Inspection:
        scratch = f"obhut_verify_{label}"
        with self._connect("postgres") as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
            try:
                libpq, env = _libpq(self._url.set(database=scratch))
                command = [_tool("pg_restore"), "--no-owner", "--exit-on-error", "--dbname", libpq, str(dump)]
                _run(command, env, f"pg_restore into the scratch database '{scratch}'")
                with self._connect(scratch) as connection:
                    return _inspect(connection)
            finally:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))

    def restore(self, dump: Path) -> None:
        command = [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            "--dbname",
            self._libpq,
            str(dump),
        ]
        _run(command, self._env, f"pg_restore into database '{self._url.database}'")
