from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, LargeBinary, MetaData, TypeDecorator, create_engine, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker

from obhut.kit import wal

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Tables of the main database. Every primary key starts with `workspace_id`."""

    metadata = MetaData(naming_convention=NAMING)


class KeystoreBase(DeclarativeBase):
    """Tables of the key store: a separate database, so that a copy of the main one holds no live keys."""

    metadata = MetaData(naming_convention=NAMING)


class SensitiveBase(DeclarativeBase):
    """Tables of the sensitive store: the categories a workspace keeps apart from the rest, in a database of their
    own under a key of their own, so that a breach of either database reveals as little as possible."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and always returned timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use obhut.kit.clock.now()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        # PostgreSQL answers in the session's time zone: always UTC here, so stored values hash the same
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Blob(LargeBinary):
    """Binary column whose values go to the driver as they are: sqlite3 and psycopg both take `bytes`,
    so the per-value wrapping LargeBinary does only costs time in bulk inserts of ciphertext."""

    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:  # noqa: ARG002
        return None


# SQLite pages of new databases. A commit writes each page it changed whole into the log, one write call per
# page: erasing 5,000 customers among 100,000 at random changes most pages of every index, and with 16 KiB pages
# that costs half the time of 4 KiB ones. Point reads pay a little more copying; PostgreSQL's pages are 8 KiB.
PAGE_SIZE = 16_384


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA page_size={PAGE_SIZE}")  # only a database with no tables yet takes it
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA secure_delete=ON")  # a deleted row's bytes are zeroed in the file, on every build
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: blind indexes are random keys, the default 2 MiB thrashes
    page_size = cursor.execute("PRAGMA page_size").fetchone()[0]
    cursor.execute(f"PRAGMA wal_autocheckpoint={wal.BACKSTOP_BYTES // page_size}")  # a Checkpointer moves it first
    cursor.execute(f"PRAGMA journal_size_limit={wal.KEPT_BYTES}")
    cursor.close()


def build_engine(url: str, *, checkpointer: bool = True) -> Engine:
    """One engine per database; SQLite files are created (with their folder) on first use. `checkpointer`: a
    thread that moves SQLite's log into the file after commits. A short-lived engine (a migration's) leaves it
    out: a checkpoint that thread is running when the engine is disposed keeps its connection open after, and the
    file alone then lacks the last commits."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        on_disk = bool(parsed.database) and parsed.database != ":memory:"
        if on_disk:
            folder = Path(str(parsed.database)).parent
            if not folder.exists():
                folder.mkdir(parents=True, mode=0o700)  # database files, WAL and key file: owner only
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        if on_disk and checkpointer:
            wal.Checkpointer(engine)
        return engine
    if parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    # Server-side prepared statements from a statement's fifth use on a connection: a customer read joins three
    # tables, and planning it costs more than running it. Bulk work that grows a table plans afresh instead
    # (`plan_afresh`), or a generic plan made while the table was small (a seq scan) would stay in use.
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args={"prepare_threshold": 5})


def plan_afresh(session: Session) -> None:
    """For the rest of this transaction, PostgreSQL plans each statement for the tables as they are now, even a
    prepared one: for bulk work that grows a table, such as an import's dedupe lookups. Nothing on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def refresh_statistics(session: Session, tables: Sequence[str]) -> None:
    """After a bulk load, PostgreSQL's planner would go on planning for the tables as they were until
    autovacuum's next pass (a join of a few hundred keys became a scan of the whole grown table): ANALYZE
    them now. Nothing on SQLite, whose planner keeps no statistics unless asked."""
    if session.get_bind().dialect.name == "postgresql":
        quote = session.get_bind().dialect.identifier_preparer.quote
        for table in tables:
            session.execute(text(f"ANALYZE {quote(table)}"))


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """The edge's transaction: commit when the block succeeds, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction has committed; dropped if it rolls back."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def after_rollback(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` if the session's transaction rolls back (undo work done outside it); dropped on commit."""
    session.info.setdefault(_AFTER_ROLLBACK, []).append(callback)


def beside(session: Session, work: Callable[[], None]) -> None:
    """Run `work` in a thread beside the session's transaction, for I/O that lets go of the GIL (another
    database, an fsync) and must be done before the transaction commits: the commit waits for it first, and
    fails if it failed. A rollback waits for it too, so that nothing outlives the transaction."""
    session.info.setdefault(_BESIDE, []).append(_helpers().submit(work))


@cache
def _helpers() -> ThreadPoolExecutor:
    """One pool per process, made on first use."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="obhut-beside")


_BESIDE = "obhut.beside"
_AFTER_COMMIT = "obhut.after_commit"
_AFTER_ROLLBACK = "obhut.after_rollback"
log = logging.getLogger("obhut.db")


@event.listens_for(Session, "before_commit")
def _finish_beside(session: Session) -> None:
    futures: list[Future[None]] = session.info.pop(_BESIDE, [])
    wait(futures)  # every one, even after one failed: nothing outlives the transaction
    for future in futures:
        future.result()  # the first error fails the commit, and the transaction rolls back


@event.listens_for(Session, "after_transaction_end")
def _abandon_beside(session: Session, transaction: SessionTransaction) -> None:
    """A transaction that ends without a commit (rolled back, or closed) waits for its work beside too."""
    if transaction.parent is not None:
        return
    futures: list[Future[None]] = session.info.pop(_BESIDE, [])
    for future in futures:
        error = future.exception()  # waits; the error that caused the rollback is the one raised
        if error is not None:
            log.warning("work beside a rolled-back transaction failed: %s", type(error).__name__)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    session.info.pop(_AFTER_ROLLBACK, None)
    for callback in session.info.pop(_AFTER_COMMIT, []):
        callback()


@event.listens_for(Session, "after_rollback")
def _run_after_rollback(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)
    for callback in session.info.pop(_AFTER_ROLLBACK, []):
        callback()
