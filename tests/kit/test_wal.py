"""The write-ahead log checkpointer of SQLite engines."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from obhut import migrations
from obhut.kit import wal
from obhut.kit.db import PAGE_SIZE, build_engine
from obhut.kit.settings import Settings


def _wait_for(check: Callable[[], bool], deadline: float = 10.0) -> bool:
    """Whether `check()` comes to hold within `deadline` seconds (looked at every 50 ms)."""
    pause = threading.Event()
    for _ in range(int(deadline / 0.05)):
        if check():
            return True
        pause.wait(0.05)
    return check()


def _checkpointer(engine: Engine) -> wal.Checkpointer:
    found = [c for c in wal.Checkpointer.running if c.engine is engine]
    assert len(found) == 1
    return found[0]


def test_commits_are_moved_into_the_database_file_beside_them(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        checkpointer = _checkpointer(engine)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY, v BLOB)"))
        for n in range(20):
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t VALUES (:n, randomblob(4000))"), {"n": n})
        assert _wait_for(lambda: checkpointer.passes >= 1)
        busy, logged, moved = checkpointer.checkpoint()  # what the thread left: nothing but the pages since
        assert busy == 0
        assert moved == logged
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA page_size")).scalar() == PAGE_SIZE
            assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == wal.BACKSTOP_BYTES // PAGE_SIZE
            assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 20
    finally:
        engine.dispose()


def test_an_idle_engine_is_not_checkpointed_and_a_disposed_one_stops(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path / 'b.db'}")
    checkpointer = _checkpointer(engine)
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    assert checkpointer.passes == 0
    engine.dispose()
    assert not checkpointer.alive
    assert checkpointer not in wal.Checkpointer.running


def test_a_database_in_memory_has_none() -> None:
    engine = build_engine("sqlite://")
    assert all(c.engine is not engine for c in wal.Checkpointer.running)
    engine.dispose()


def test_a_commit_past_the_old_backstop_leaves_its_pages_to_the_checkpointer_and_the_log_shrinks_after(
    tmp_path: Path,
) -> None:
    """A transaction that logs 80 MiB (a purge batch logs about 100 MiB) commits without copying its pages into
    the database file; once they are moved, the next write starts the log over at no more than `KEPT_BYTES`."""
    path = tmp_path / "big.db"
    engine = build_engine(f"sqlite:///{path}", checkpointer=False)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY, v BLOB)"))
        with engine.begin() as connection:
            connection.execute(
                text("WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :rows) "
                     "INSERT INTO t SELECT n, zeroblob(:size) FROM s"),
                {"rows": 80 * 2**20 // 8000, "size": 8000},
            )  # fmt: skip
        log = path.with_name("big.db-wal")
        assert log.stat().st_size > 80 * 2**20
        assert path.stat().st_size < 2**20  # the rows are in the log alone
        with engine.connect() as connection:
            busy, logged, moved = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
            assert (busy, moved) == (0, logged)
        assert path.stat().st_size > 80 * 2**20
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM t WHERE n = 1"))
        assert log.stat().st_size <= wal.KEPT_BYTES
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 80 * 2**20 // 8000 - 1
    finally:
        engine.dispose()


def test_a_deleted_row_leaves_none_of_its_bytes_in_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    engine = build_engine(f"sqlite:///{path}", checkpointer=False)
    marker = b"MARKER-GONE-0042" * 8
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY, v BLOB)"))
            connection.execute(text("INSERT INTO t VALUES (1, :v), (2, :w)"), {"v": marker, "w": b"kept" * 8})
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM t WHERE n = 1"))
        with engine.connect() as connection:
            busy, logged, moved = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            assert (busy, moved) == (0, logged)
        assert b"kept" * 8 in path.read_bytes()
        assert marker not in path.read_bytes()
    finally:
        engine.dispose()


def test_a_database_made_with_other_pages_keeps_them_and_its_backstop_follows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as made_earlier:  # as an Obhut before 16 KiB pages made it
        made_earlier.execute("PRAGMA page_size=4096")
        made_earlier.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    engine = build_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA page_size")).scalar() == 4096
            assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == wal.BACKSTOP_BYTES // 4096
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        engine.dispose()


def test_a_migrated_file_holds_its_whole_schema(tmp_path: Path) -> None:
    """A copy of the file alone, taken right after the migrations (as the test fixtures' template is), is at the
    newest revision: no commit of theirs is left in the log."""
    main = tmp_path / "obhut.db"
    url = f"sqlite:///{main}"
    migrations.upgrade(Settings(database_url=url, keystore_url=f"sqlite:///{tmp_path / 'keystore.db'}"))
    shutil.copy(main, tmp_path / "copy.db")
    head = ScriptDirectory.from_config(migrations.alembic_config("main", url)).get_current_head()
    with closing(sqlite3.connect(tmp_path / "copy.db")) as copy:
        assert copy.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]
