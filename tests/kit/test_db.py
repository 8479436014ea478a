"""Work beside a transaction (`beside`): its commit waits for it, and fails if it failed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from obhut.kit.db import after_commit, beside, build_engine, session_factory, unit_of_work


class RefusedError(Exception):
    pass


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    built = build_engine(f"sqlite:///{tmp_path / 'beside.db'}")
    with built.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    yield built
    built.dispose()


def _stored(sessions: sessionmaker[Session]) -> list[int]:
    with sessions() as session:
        return list(session.execute(text("SELECT n FROM t ORDER BY n")).scalars())


def test_the_commit_happens_after_the_work_beside_it(engine: Engine) -> None:
    sessions, gate, seen = session_factory(engine), threading.Event(), list[str]()

    def work() -> None:
        gate.wait(10)
        seen.append("work")

    with unit_of_work(sessions) as session:
        beside(session, work)
        after_commit(session, lambda: seen.append("committed"))
        session.execute(text("INSERT INTO t VALUES (1)"))
        assert seen == []  # the work waits for the gate, which opens only now
        gate.set()
    assert seen == ["work", "committed"]
    assert _stored(sessions) == [1]


def _store_beside(sessions: sessionmaker[Session], n: int, failing: str, then_raise: bool = False) -> None:
    """Stores `n` while work beside the transaction fails with `failing`; `then_raise`: the block fails too."""

    def work() -> None:
        raise RefusedError(failing)

    with unit_of_work(sessions) as session:
        beside(session, work)
        session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
        if then_raise:
            raise ValueError("bad row")


def test_work_that_fails_fails_the_commit_and_nothing_is_stored(engine: Engine) -> None:
    sessions = session_factory(engine)
    with pytest.raises(RefusedError, match="disk is full"):
        _store_beside(sessions, 2, "the ledger's disk is full")
    assert _stored(sessions) == []


def test_a_rollback_raises_its_own_error_and_logs_the_work_that_failed(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = session_factory(engine)
    with caplog.at_level(logging.WARNING, "obhut.db"), pytest.raises(ValueError, match="bad row"):
        _store_beside(sessions, 3, "unreachable key store", then_raise=True)
    assert _stored(sessions) == []
    assert "RefusedError" in caplog.text
