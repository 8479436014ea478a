"""Work on one PostgreSQL database split among processes: forked workers, each with a connection of its own,
take tasks one at a time, and the results come back in task order. For scans whose Python work is the limit
(one process runs on one core at a time), such as checking the access log's hashes.

Not for SQLite: a forked process inherits SQLite's in-process bookkeeping of the file's locks (SQLite warns
against carrying a connection across fork), so a worker could read without the locks that keep another
process's checkpoint from overwriting what it reads."""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from obhut.kit.db import build_engine

T = TypeVar("T")
R = TypeVar("R")
MAX_WORKERS = 4
_OWN: dict[str, Connection] = {}  # in a worker: the connection it opened for itself, by database URL


def supports(session: Session) -> bool:
    """Whether workers may be forked for the session's database at all: PostgreSQL, on a platform with fork."""
    engine = session.get_bind()
    return sys.platform == "linux" and isinstance(engine, Engine) and engine.dialect.name == "postgresql"


def workers_for(session: Session) -> int:
    """How many processes should share the work: the cores this process may run on (at most MAX_WORKERS), or 1
    where forking is unsafe: another thread is running (a fork copies the locks it may hold), or `supports`
    says no."""
    if not supports(session) or threading.active_count() > 1:
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))


def ordered_map(
    session: Session, function: Callable[[Connection, T], R], tasks: Sequence[T], workers: int
) -> Iterator[R]:
    """function(connection, task) for each task, in up to `workers` forked processes, each connected on its own
    to the session's PostgreSQL database (one task, or one worker: here, on a connection of the session's engine);
    the results in task order. Each task reads in a transaction of its own. Leaving the iteration early stops
    the workers. `function` must be a module's top-level function, tasks and results picklable; an error in a
    worker, connecting included, is raised here."""
    engine = session.get_bind()
    if not supports(session) or not isinstance(engine, Engine):
        raise ValueError("ordered_map forks workers for PostgreSQL only (see the module's note on SQLite)")
    workers = min(workers, len(tasks))
    if workers <= 1:
        with engine.connect() as connection:
            for task in tasks:
                yield _in_transaction(connection, function, task)
        return
    url = engine.url.render_as_string(hide_password=False)
    pool = multiprocessing.get_context("fork").Pool(workers)
    finished = False
    try:
        yield from pool.imap(partial(_call, url, function), tasks)
        finished = True
    finally:
        if finished:  # the workers leave their loop and close their connections
            pool.close()
        else:
            pool.terminate()
        pool.join()


def _call(url: str, function: Callable[[Connection, T], R], task: T) -> R:
    """In a worker: connects on its first task (the parent's connections, copied by the fork, stay untouched;
    a failure to connect comes back as this task's error instead of a worker that dies and is forked again)."""
    connection = _OWN.get(url)
    if connection is None:
        connection = _OWN[url] = build_engine(url).connect()
        multiprocessing.util.Finalize(None, connection.close, exitpriority=10)
    return _in_transaction(connection, function, task)


def _in_transaction(connection: Connection, function: Callable[[Connection, T], R], task: T) -> R:
    with connection.begin():  # ended after the task: no snapshot is held between tasks
        return function(connection, task)
