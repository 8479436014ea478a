"""Two changes of one customer at once, with a sensitive store, on PostgreSQL (SQLite has one writer at a time).
Each change writes a new record from the one it read; were both to start from the same, the later commit would
bring back what the earlier erased, or drop what it changed. The second waits for the first's row lock instead
(here: a lock timeout shows the wait), then starts from what the first committed."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from obhut.container import Container
from obhut.kit.db import unit_of_work
from tests.conftest import WORKSPACE, jane

pytestmark = [pytest.mark.parametrize("backend", ["postgres"]), pytest.mark.sensitive_store]


def test_a_change_waits_at_its_read_for_an_erasure_in_flight_and_keeps_it(container: Container) -> None:
    with unit_of_work(container.sessions) as session:
        customer_id = container.customers.create(session, WORKSPACE, jane()).id
    with container.sessions() as erasing, container.sessions() as changing:
        changing.execute(text("SET lock_timeout = '200ms'"))
        container.customers._live(erasing, WORKSPACE, customer_id, lock=True)  # where an erasure of a field starts
        with pytest.raises(OperationalError, match="lock timeout"):  # before it reads the record it would copy
            container.customers.update(changing, WORKSPACE, customer_id, {"iban": "DE02120300000000202051"})
        changing.rollback()
        container.customers.clear(erasing, WORKSPACE, customer_id, ["notes"])
        erasing.commit()
        container.customers.update(changing, WORKSPACE, customer_id, {"iban": "DE02120300000000202051"})
        changing.commit()
    with unit_of_work(container.sessions) as session:
        values = container.customers.get(session, WORKSPACE, customer_id).values
    assert values["notes"] is None  # the erasure stands
    assert values["iban"] == "DE02120300000000202051"  # and so does the change
    assert values["card"]["last4"] == "1111"
