"""Shreds beside other transactions on PostgreSQL (SQLite has one writer at a time). A shred moves a shard to a
new key and destroys the old one; a key wrapped under the old one by a transaction still open, or a second move
of the same shard, would be lost. Both wait for the shard instead (here: a lock timeout shows the wait)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from obhut.container import Container
from obhut.kit.db import unit_of_work
from obhut.vault import rules
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.parametrize("backend", ["postgres"])


def _same_shard(container: Container, count: int) -> list[str]:
    """`count` subject ids that all sit in one shard."""
    shards = container.settings.key_shards
    ids = [f"subject-{n}" for n in range(count * shards * 4)]
    first = rules.shard_of(ids[0], shards)
    return [i for i in ids if rules.shard_of(i, shards) == first][:count]


def _new_keys(session: Session, container: Container, subject_ids: list[str]) -> None:
    container.vault.open(session, WORKSPACE).new_subjects(subject_ids)


def _readable(container: Container, subject_ids: list[str]) -> list[str]:
    """The subjects whose data keys open, with the shard keys read from the key store (as another process,
    which holds none of them yet, would)."""
    container.vault._cache.drop(WORKSPACE)
    with container.sessions() as session:
        return sorted(container.vault.open(session, WORKSPACE).subjects(subject_ids))


@pytest.fixture
def waiting(container: Container) -> Iterator[Session]:
    """A second session that gives up on a lock after 200 ms instead of waiting for it."""
    with container.sessions() as session:
        session.execute(text("SET lock_timeout = '200ms'"))
        yield session


def test_a_shred_waits_for_a_transaction_that_wraps_a_key_in_its_shard(container: Container, waiting: Session) -> None:
    victim, newcomer, neighbour = _same_shard(container, 3)
    with unit_of_work(container.sessions) as session:
        _new_keys(session, container, [victim, neighbour])
    with container.sessions() as wrapping:
        _new_keys(wrapping, container, [newcomer])  # open: the newcomer's key is wrapped under today's shard key
        with pytest.raises(OperationalError, match="lock timeout"):
            container.vault.shred(waiting, WORKSPACE, victim)
        waiting.rollback()
        wrapping.commit()
    with unit_of_work(container.sessions) as session:  # now it moves the shard, the newcomer's key with it
        container.vault.shred(session, WORKSPACE, victim)
    assert _readable(container, [newcomer, neighbour]) == sorted([newcomer, neighbour])


def test_two_shreds_of_one_shard_take_turns(container: Container, waiting: Session) -> None:
    first, second, neighbour = _same_shard(container, 3)
    with unit_of_work(container.sessions) as session:
        _new_keys(session, container, [first, second, neighbour])
    with container.sessions() as shredding:
        container.vault.shred(shredding, WORKSPACE, first)
        with pytest.raises(OperationalError, match="lock timeout"):
            container.vault.shred(waiting, WORKSPACE, second)
        waiting.rollback()
        shredding.commit()
    assert _readable(container, [second, neighbour]) == sorted([second, neighbour])
    with unit_of_work(container.sessions) as session:
        container.vault.shred(session, WORKSPACE, second)
    assert _readable(container, [neighbour]) == [neighbour]  # the key store holds the key it is wrapped under
