"""The worker's rights job: a request whose deadline has passed is announced once (outbox `request.due`,
ids only, and the access log), not on every turn."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from obhut.container import Container
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.outbox.models import OutboxEvent
from obhut.rights import tasks
from obhut.rights.rules import Right
from tests.conftest import WORKSPACE, jane


def test_an_overdue_request_is_announced_once(container: Container) -> None:
    with unit_of_work(container.sessions) as session:
        customer = container.customers.create(session, WORKSPACE, jane()).id
        keyring = container.vault.open(session, WORKSPACE)
        request = container.rights.open(session, keyring, customer, Right.ACCESS, requested_by="staff:s1")
        request.deadline = now() - timedelta(hours=1)
    assert tasks.remind_all(container.sessions, container.rights) == 1
    assert tasks.remind_all(container.sessions, container.rights) == 0
    with unit_of_work(container.sessions) as session:
        due = session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "request.due")).one()
        assert '"overdue":true' in due.data
        assert request.request_id in due.data
        assert "Musterfrau" not in due.data
