"""Reading a customer by id or by lookup takes one round trip to the database, keys included, on SQLite and
PostgreSQL; the shortcut that makes a lookup one round trip (the blind index computed from keys this process
already holds) never answers wrongly: a wrong guess reads again, a revocation made elsewhere still shows, and a
value shared by very many customers still answers the first of them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, update

from obhut.container import Container
from obhut.customers.repository import LOOKUP_LIMIT, ShownCustomer
from obhut.customers.rules import FIELDS
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.vault.errors import KeyRevokedError
from obhut.vault.models import KeyVersion
from obhut.vault.service import INDEX_SECRET
from tests.conftest import WORKSPACE, jane, reveal_all


@contextmanager
def statements(container: Container) -> Iterator[list[str]]:
    """The SQL statements sent to the main database inside the block."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])

    event.listen(container.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(container.engine, "before_cursor_execute", record)


@pytest.fixture
def customer_id(container: Container) -> str:
    with unit_of_work(container.sessions) as session:
        return container.customers.create(session, WORKSPACE, jane(email="reads@example.com")).id


def _lookup(container: Container, email: str) -> list[str]:
    with unit_of_work(container.sessions) as session:
        return [v.id for v in container.customers.lookup(session, WORKSPACE, "email", email, reveal_all())]


def test_a_read_by_id_is_one_statement(container: Container, customer_id: str) -> None:
    with statements(container) as sent, unit_of_work(container.sessions) as session:
        record = container.customers.view(session, WORKSPACE, customer_id, reveal_all())
    assert record.values["email"] == "reads@example.com"
    assert len(sent) == 1


def test_a_lookup_is_one_statement_once_the_keys_are_held(container: Container, customer_id: str) -> None:
    assert _lookup(container, "READS@example.com") == [customer_id]  # the first one unwraps the keys
    with statements(container) as sent:
        assert _lookup(container, "reads@EXAMPLE.com") == [customer_id]
    assert len(sent) == 1


def test_a_wrong_guess_reads_again_and_finds_the_customer(container: Container, customer_id: str) -> None:
    """Keys held for a version the workspace does not have (as after it was provisioned anew) give a wrong
    index value: the keyring opened from the versions read beside it does not confirm it, and the lookup reads
    again with the right one."""
    assert _lookup(container, "reads@example.com") == [customer_id]
    container.vault._cache.add(WORKSPACE, 99, {INDEX_SECRET: b"\x07" * 32})
    with statements(container) as sent:
        assert _lookup(container, "reads@example.com") == [customer_id]
    assert len(sent) == 2


def test_a_revocation_made_elsewhere_shows_on_the_next_lookup(container: Container, customer_id: str) -> None:
    """Another process revokes (here: straight in the database, so this process still holds the keys)."""
    assert _lookup(container, "reads@example.com") == [customer_id]
    with unit_of_work(container.sessions) as session:
        session.execute(update(KeyVersion).where(KeyVersion.workspace_id == WORKSPACE).values(revoked_at=now()))
    with pytest.raises(KeyRevokedError, match="obhut-acme-v1"):
        _lookup(container, "reads@example.com")


def test_a_value_shared_by_very_many_answers_the_first_of_them(container: Container) -> None:
    """More matches than one round trip takes: the lookup reads keys and customers apart, up to its limit."""
    with unit_of_work(container.sessions) as session:
        keyring = container.vault.open(session, WORKSPACE)
        family = [jane(email="family@example.com", external_ref=f"F-{n}") for n in range(300)]
        values = [container.customers.validate(session, WORKSPACE, one) for one in family]
        ids = container.customers.add_many(session, keyring, values)
    found = _lookup(container, "family@example.com")
    assert len(found) == len(set(found)) == LOOKUP_LIMIT
    assert set(found) <= set(ids)


def test_a_shown_customer_carries_every_field() -> None:
    """The read's own row type lists the fields by hand: a new field must be added there too."""
    assert set(FIELDS) <= set(ShownCustomer._fields)
    assert "id" in ShownCustomer._fields
    assert not [name for name in ShownCustomer._fields if name.endswith("_index")]  # never the blind indexes
