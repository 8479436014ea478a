"""Work on one database split among processes: forked workers, each with a connection of its own to the same
database, take tasks one at a time, and the results come back in task order. For scans whose Python work is
the limit (one process runs on one core at a time), such as checking the access log's hashes."""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from obhut.kit.db import build_engine

T = TypeVar("T")
R = TypeVar("R")
MAX_WORKERS = 4
_OWN: list[Connection] = []  # in a worker: the connection it opened for itself


def workers_for(session: Session) -> int:
    """How many processes may share the work: the cores this process may run on (at most MAX_WORKERS), or 1
    where forking is unsafe or useless: another thread is running (a fork copies the locks it may hold), the
    platform has no plain fork, or the database lives in this process's memory."""
    engine = session.get_bind()
    if sys.platform != "linux" or threading.active_count() > 1 or not isinstance(engine, Engine):
        return 1
    if engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:"):
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))


def ordered_map(
    session: Session, function: Callable[[Connection, T], R], tasks: Iterable[T], workers: int
) -> Iterator[R]:
    """function(connection, task) for each task in `workers` forked processes, each connected on its own to the
    session's database; the results in task order. Leaving the iteration early stops the workers. `function`
    must be a module's top-level function, tasks and results picklable; an error in a worker is raised here."""
    engine = session.get_bind()
    if not isinstance(engine, Engine):
        raise TypeError("ordered_map needs a session bound to an engine")
    url = engine.url.render_as_string(hide_password=False)
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_start, initargs=(url,))
    finished = False
    try:
        yield from pool.imap(partial(_call, function), tasks)
        finished = True
    finally:
        if finished:  # the workers leave their loop and close their connections
            pool.close()
        else:
            pool.terminate()
        pool.join()


def _start(url: str) -> None:
    """In a new worker: a connection of its own (the parent's, copied by the fork, stay untouched), closed when
    the worker leaves."""
    connection = build_engine(url).connect()
    _OWN.append(connection)
    multiprocessing.util.Finalize(None, connection.close, exitpriority=10)


def _call(function: Callable[[Connection, T], R], task: T) -> R:
    connection = _OWN[0]
    try:
        return function(connection, task)
    finally:
        connection.rollback()  # each task reads in a snapshot of its own; none is held between tasks
