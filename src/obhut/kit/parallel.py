"""Work on one PostgreSQL database split among processes: forked workers, each with a connection of its own,
take tasks one at a time, and the results come back in task order. For scans whose Python work is the limit
(one process runs on one core at a time), such as checking the access log's hashes.

Not for SQLite: a forked process inherits SQLite's in-process bookkeeping of the file's locks (SQLite warns
against carrying a connection across fork), so a worker could read without the locks that keep another
process's checkpoint from overwriting what it reads."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from obhut.kit.db import build_engine

T = TypeVar("T")
R = TypeVar("R")
MAX_WORKERS = 4


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
    yield from _forked(engine.url.render_as_string(hide_password=False), function, tasks, workers)


def _forked(url: str, function: Callable[[Connection, T], R], tasks: Sequence[T], workers: int) -> Iterator[R]:
    """Plain processes, each given every `workers`-th task and answering through a pipe of its own; none of a
    pool's helper threads running beside the forks, and no pool terminate (which can wait forever on a worker it
    stopped while the worker held the task queue's lock)."""
    context = multiprocessing.get_context("fork")
    pipes: list[multiprocessing.connection.Connection] = []
    processes = []
    finished = False
    try:
        for first in range(workers):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=_work, args=(url, function, tasks[first::workers], sender), daemon=True)
            process.start()
            sender.close()  # here only the reading end: a worker that dies shows as the end of its pipe
            pipes.append(receiver)
            processes.append(process)
        for position in range(len(tasks)):
            try:
                answered, value = pipes[position % workers].recv()
            except EOFError:
                raise RuntimeError(f"a worker process stopped before answering task {position}") from None
            if not answered:
                raise value
            yield value
        finished = True
    finally:
        for process in processes:
            if not finished:
                process.kill()
            process.join()
        for pipe in pipes:
            pipe.close()


def _work(
    url: str, function: Callable[[Connection, T], R], tasks: Sequence[T], answers: multiprocessing.connection.Connection
) -> None:
    """A worker: its own connection (the parent's, copied by the fork, stay untouched), its tasks in order, each
    answer (True, result) or, at the first error, connecting included, (False, error) and no more."""
    try:
        engine = build_engine(url)
        with engine.connect() as connection:
            for task in tasks:
                answers.send((True, _in_transaction(connection, function, task)))
    except Exception as error:  # noqa: BLE001 - every error goes to the parent, which raises it
        try:
            answers.send((False, error))
        except Exception:  # noqa: BLE001 - an error that does not pickle: its type and message
            answers.send((False, RuntimeError(f"{type(error).__name__}: {error}")))
    finally:
        answers.close()


def _in_transaction(connection: Connection, function: Callable[[Connection, T], R], task: T) -> R:
    with connection.begin():  # ended after the task: no snapshot is held between tasks
        return function(connection, task)
