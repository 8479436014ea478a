"""Work split among forked processes (PostgreSQL): each worker reads the database through a connection of its
own, the results come back in task order, an error comes back where it happened (a failure to connect too),
and stopping early stops the workers. SQLite is refused."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, Table, create_engine, func, insert, make_url, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from obhut.kit.db import build_engine
from obhut.kit.parallel import MAX_WORKERS, ordered_map, workers_for
from obhut.kit.settings import Settings

ROWS = Table("parallel_rows", MetaData(), Column("n", Integer, primary_key=True))


def _sum(connection: Connection, bounds: tuple[int, int]) -> tuple[int, int]:
    """(the sum of the rows in [low, high), the worker's process id)."""
    low, high = bounds
    total = connection.scalar(select(func.coalesce(func.sum(ROWS.c.n), 0)).where(ROWS.c.n >= low, ROWS.c.n < high))
    return int(total or 0), os.getpid()


def _fail_on_three(connection: Connection, task: int) -> int:
    if task == 3:
        raise LookupError(f"task {task} found nothing")
    return task


pytestmark = pytest.mark.parametrize("backend", ["postgres"])  # the settings fixture's database


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    engine = build_engine(settings.resolved_database_url)
    ROWS.metadata.create_all(engine)
    with Session(engine) as session:
        session.execute(insert(ROWS), [{"n": n} for n in range(100)])
        session.commit()
        yield session
    engine.dispose()


def test_workers_read_what_was_committed_and_answer_in_task_order(session: Session) -> None:
    tasks = [(low, low + 10) for low in range(0, 100, 10)]
    results = list(ordered_map(session, _sum, tasks, workers=2))
    assert [total for total, _ in results] == [sum(range(low, high)) for low, high in tasks]
    assert os.getpid() not in {pid for _, pid in results}
    assert 1 <= len({pid for _, pid in results}) <= 2
    assert multiprocessing.active_children() == []


def test_an_error_in_a_worker_is_raised_to_the_caller(session: Session) -> None:
    results = ordered_map(session, _fail_on_three, range(6), workers=2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(LookupError, match="task 3 found nothing"):
        next(results)
    assert multiprocessing.active_children() == []


def test_stopping_early_stops_the_workers(session: Session) -> None:
    results = ordered_map(session, _fail_on_three, range(1000), workers=2)
    assert next(results) == 0
    results.close()
    assert multiprocessing.active_children() == []


def test_a_worker_that_cannot_connect_fails_the_call_instead_of_hanging(settings: Settings) -> None:
    url = make_url(settings.resolved_database_url).set(database="obhut_no_such_database")
    engine = build_engine(url.render_as_string(hide_password=False))
    with Session(engine) as session, pytest.raises(DBAPIError, match="obhut_no_such_database"):
        list(ordered_map(session, _sum, [(0, 10), (10, 20)], workers=2))
    assert multiprocessing.active_children() == []


def test_one_task_runs_here(session: Session) -> None:
    assert [total for total, pid in ordered_map(session, _sum, [(0, 100)], workers=4)] == [sum(range(100))]
    assert next(ordered_map(session, _sum, [(0, 1)], workers=4))[1] == os.getpid()


def test_one_process_where_forking_is_unsafe(session: Session, tmp_path: Path) -> None:
    alone = threading.active_count() == 1
    assert workers_for(session) == (min(len(os.sched_getaffinity(0)), MAX_WORKERS) if alone else 1)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert workers_for(session) == 1  # a fork would copy the other thread's locks as they are
    finally:
        release.set()
        other.join()
    with Session(create_engine(f"sqlite:///{tmp_path / 'file.db'}")) as on_sqlite:
        assert workers_for(on_sqlite) == 1  # a fork would copy SQLite's bookkeeping of the file's locks
        with pytest.raises(ValueError, match="PostgreSQL only"):
            next(ordered_map(on_sqlite, _fail_on_three, [1, 2], workers=2))
