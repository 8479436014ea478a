"""Reading a large result fast: chunks of plain driver tuples, fetched by a thread while the caller works on
the chunk before. For whole-table scans such as verifying the access log, where SQLAlchemy's row objects
would cost about as much as the work done on each row."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from obhut.kit.ids import new_id

T = TypeVar("T")
Chunk = list[tuple[Any, ...]]
_DONE = object()


@contextmanager
def driver_chunks(session: Session, statement: Select[Any], size: int) -> Iterator[Iterator[Chunk]]:
    """The rows of `statement` in the session's transaction, `size` at a time, as the driver gives them: no
    result processing (the caller converts what needs it) and parameters as given (plain str and int). A
    server-side cursor on PostgreSQL, so memory stays one chunk ahead whatever the table's size."""
    connection = session.connection()
    compiled = statement.compile(dialect=connection.dialect)
    given = compiled.construct_params()
    parameters = tuple(given[name] for name in compiled.positiontup or ()) if compiled.positional else given
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        cursor = driver.cursor(name=f"obhut_{new_id().replace('-', '')}")  # type: ignore[union-attr]
    else:
        cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.string, parameters)
        chunks = read_ahead(iter(partial(cursor.fetchmany, size), []))
        try:
            yield chunks
        finally:
            chunks.close()  # stops the reading thread before its cursor closes
    finally:
        cursor.close()


def read_ahead(items: Iterator[T], depth: int = 2) -> Generator[T, None, None]:
    """What `items` yields, taken from it by a thread up to `depth` ahead of the caller (a driver waiting on
    its database lets the caller's Python run meanwhile). Closing the generator stops the thread; an error
    in the thread is raised here."""
    handoff: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def fetch() -> None:
        try:
            for item in items:
                handoff.put(item)
                if stop.is_set():
                    return
            handoff.put(_DONE)
        except Exception as error:  # noqa: BLE001 - handed to the caller, raised there
            handoff.put(error)

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
