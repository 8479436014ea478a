"""Reading ahead in a thread: everything arrives in order, an error arrives where it happened, and a caller
that stops early stops the thread; plain driver rows, SQLite in memory read on the caller's thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.orm import Session

from obhut.kit.db import build_engine
from obhut.kit.settings import Settings
from obhut.kit.stream import driver_chunks, driver_rows, read_ahead


def test_everything_arrives_in_order() -> None:
    assert list(read_ahead(iter(range(1000)), depth=3)) == list(range(1000))


def test_an_error_while_reading_is_raised_to_the_caller_after_what_came_before() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise LookupError("the cursor broke")

    ahead = read_ahead(failing())
    assert (next(ahead), next(ahead)) == (1, 2)
    with pytest.raises(LookupError, match="the cursor broke"):
        next(ahead)


def test_stopping_early_stops_the_reader_where_it_was() -> None:
    taken: list[int] = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            taken.append(n)
            yield n
            n += 1

    ahead = read_ahead(endless(), depth=2)
    assert [next(ahead) for _ in range(5)] == [0, 1, 2, 3, 4]
    ahead.close()
    assert not any(t.name == "obhut-read-ahead" for t in threading.enumerate())
    assert len(taken) <= 5 + 2 + 2  # what was handed over, what the queue held, and one in the reader's hand


@pytest.mark.parametrize("where", ["memory", "file"])
def test_driver_chunks_read_sqlite_in_memory_on_the_callers_thread_and_files_ahead(where: str, tmp_path: Path) -> None:
    engine = create_engine("sqlite://" if where == "memory" else f"sqlite:///{tmp_path / 'rows.db'}")
    rows = Table("rows", MetaData(), Column("n", Integer, primary_key=True), Column("word", String))
    rows.metadata.create_all(engine)
    with Session(engine) as session:
        session.execute(insert(rows), [{"n": n, "word": f"w{n}"} for n in range(10)])
        query = select(rows.c.n, rows.c.word).where(rows.c.n >= 3).order_by(rows.c.n)
        with driver_chunks(session, query, 4) as chunks:
            got = [list(chunk) for chunk in chunks]
        assert got == [[(n, f"w{n}") for n in range(s, min(s + 4, 10))] for s in (3, 7)]
        with pytest.raises(TypeError, match="plain parameters"):
            driver_chunks(session, select(rows.c.n).where(rows.c.word == b"bytes"), 4).__enter__()
    engine.dispose()


def test_driver_rows_and_chunks_give_binary_columns_as_bytes_on_both_databases(settings: Settings) -> None:
    engine = build_engine(settings.resolved_database_url)
    blobs = Table("stream_blobs", MetaData(), Column("n", Integer, primary_key=True), Column("data", LargeBinary))
    blobs.metadata.create_all(engine)
    expected = [(n, bytes([n, 0, 255]) * n) for n in range(1, 6)]
    try:
        with Session(engine) as session:
            session.execute(insert(blobs), [{"n": n, "data": data} for n, data in expected])
            query = select(blobs.c.n, blobs.c.data).where(blobs.c.n >= 2).order_by(blobs.c.n)
            rows = driver_rows(session.connection(), query)
            with driver_chunks(session, query, 3) as chunks:
                chunked = [row for chunk in chunks for row in chunk]
        assert [tuple(row) for row in rows] == [tuple(row) for row in chunked] == expected[1:]
        assert {type(data) for _, data in rows + chunked} == {bytes}
    finally:
        engine.dispose()
