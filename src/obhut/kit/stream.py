"""Reading a large result fast: plain driver tuples, in chunks that a thread fetches while the caller works on
the chunk before, or all at once for a result that fits in memory. For whole-table scans such as verifying the
access log, where SQLAlchemy's row objects would cost about as much as the work done on each row."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection, Select
from sqlalchemy.orm import Session

from obhut.kit.ids import new_id

T = TypeVar("T")
Chunk = list[tuple[Any, ...]]
_DONE = object()


@contextmanager
def driver_chunks(session: Session, statement: Select[Any], size: int) -> Iterator[Iterator[Chunk]]:
    """The rows of `statement` in the session's transaction, `size` at a time, as the driver gives them: no
    result processing (the caller converts what needs it). Parameters go to the driver as they are, so only
    plain ones are taken (str, int, None). A thread reads a few chunks ahead of the caller (PostgreSQL through
    a server-side cursor, so memory stays a few chunks whatever the table's size), except where the driver's
    connection is bound to the caller's thread (SQLite in memory)."""
    connection = session.connection()
    sql, parameters = _driver_statement(connection, statement)
    cursor = _cursor(connection, server_side=True)
    try:
        cursor.execute(sql, parameters)
        fetched = iter(partial(cursor.fetchmany, size), [])
        chunks = read_ahead(fetched) if _shareable(connection) else fetched
        try:
            yield chunks
        finally:
            if isinstance(chunks, Generator):
                chunks.close()  # stops the reading thread before its cursor closes
    finally:
        cursor.close()


def driver_rows(connection: Connection, statement: Select[Any]) -> Chunk:
    """All rows of `statement` as the driver gives them, as `driver_chunks` does, for a result that fits in
    memory."""
    sql, parameters = _driver_statement(connection, statement)
    cursor = _cursor(connection, server_side=False)
    try:
        cursor.execute(sql, parameters)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _cursor(connection: Connection, *, server_side: bool) -> Any:
    """A driver cursor. PostgreSQL: binary results (bytea arrives as it is, not as hex), and server-side if
    asked (memory stays a few chunks whatever the result's size)."""
    driver = connection.connection.driver_connection
    if connection.dialect.name != "postgresql":
        return driver.cursor()  # type: ignore[union-attr]
    name = f"obhut_{new_id().replace('-', '')}" if server_side else ""  # psycopg: no name, a client cursor
    return driver.cursor(name=name, binary=True)  # type: ignore[union-attr]


def _driver_statement(connection: Connection, statement: Select[Any]) -> tuple[str, Any]:
    """The statement's SQL and parameters in the driver's own form; only plain parameters are taken."""
    compiled = statement.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})  # IN lists
    given = compiled.construct_params()
    if any(value is not None and type(value) not in (str, int) for value in given.values()):
        raise TypeError("driver rows take plain parameters only (str, int, None): others need bind processing")
    return compiled.string, tuple(given[name] for name in compiled.positiontup or ()) if compiled.positional else given


def _shareable(connection: Connection) -> bool:
    """Whether another thread may use the connection's driver connection meanwhile: SQLAlchemy lets it for a
    SQLite file (check_same_thread off), not for a database in memory or a URL that asks otherwise."""
    if connection.dialect.name != "sqlite":
        return True
    url = connection.engine.url
    asked = str(url.query.get("check_same_thread", "false")).lower()
    return url.database not in (None, "", ":memory:") and asked in ("false", "0")


def read_ahead(items: Iterator[T], depth: int = 2) -> Generator[T, None, None]:
    """What `items` yields, taken from it by a thread up to `depth` ahead of the caller (a driver waiting on
    its database lets the caller's Python run meanwhile). Closing the generator stops the thread; an error
    in the thread is raised here."""
    handoff: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def fetch() -> None:
        last: object = RuntimeError("the reading thread stopped before the end of the result")
        try:
            for item in items:
                handoff.put(item)
                if stop.is_set():
                    return
            last = _DONE
        except Exception as error:  # noqa: BLE001 - handed to the caller, raised there
            last = error
        finally:  # however the thread ends, the caller is not left waiting
            if not stop.is_set():
                handoff.put(last)

    thread = threading.Thread(target=fetch, name="obhut-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # free a put that waits on a full queue, so the thread sees the stop
            with suppress(queue.Empty):
                handoff.get(timeout=0.05)
        thread.join()
