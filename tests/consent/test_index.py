"""The in-process consent check, on SQLite and PostgreSQL: the same decision as the database check after every
kind of change, the first check after a withdrawal already says no, a new major notice lapses consents, and
(PostgreSQL) a change committed by another process reaches this one's index."""

from __future__ import annotations

import random
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from obhut.api.app import create_app
from obhut.consent import service
from obhut.consent.cache import ConsentIndex
from obhut.container import Container, build
from obhut.kit.clock import now
from obhut.kit.settings import Settings
from tests.conftest import WORKSPACE, jane
from tests.consent.test_ledger import BASE, CONSENT, _event, define_catalogue

PURPOSES = ("newsletter", "fraud_checks", "partner_sharing")


def _index(container: Container) -> ConsentIndex:
    index = container.consent_index()
    deadline = time.monotonic() + 10
    while not index.active:  # on PostgreSQL: until its listener hears every change
        assert time.monotonic() < deadline, "the consent index never started listening"
        time.sleep(0.01)
    return index


@pytest.fixture
def customers(client: TestClient) -> list[str]:
    define_catalogue(client)
    return [str(client.post(f"{BASE}/customers", json=jane(external_ref=f"K-{n}")).json()["id"]) for n in range(3)]


def _agree(container: Container, index: ConsentIndex, customers: list[str]) -> None:
    """The index, the single check and the batch check (the outbox's) all say the same."""
    pairs = [(c, key) for c in customers for key in (*PURPOSES, "unknown_purpose")]
    with container.sessions() as session:
        allowed = set()
        for customer_id, key in pairs:
            decision = service.check(session, WORKSPACE, customer_id, key)
            assert index.decide(WORKSPACE, customer_id, key) == decision
            allowed |= {(customer_id, key)} if decision.allowed else set()
        assert service.allowed_pairs(session, WORKSPACE, pairs) == allowed


def test_the_index_decides_as_the_database_after_every_change(
    client: TestClient, container: Container, customers: list[str]
) -> None:
    index = _index(container)
    rng = random.Random(11)
    _agree(container, index, customers)  # loads every customer: from here on the index answers from memory
    for _ in range(40):
        customer_id, key = rng.choice(customers), rng.choice(PURPOSES)
        kind = rng.choice(["granted", "denied", "withdrawn", "objected", "granted"])
        body = {"purpose": key, "kind": kind, "notice_version": "1.0" if kind == "granted" else None}
        if kind == "granted" and rng.random() < 0.3:
            body["until"] = (now() + timedelta(days=rng.choice([-1, 1]))).isoformat()
        assert client.post(f"{CONSENT}/customers/{customer_id}/events", json=body).status_code == 201
        _agree(container, index, customers)
    assert len(index) == len(customers)


def test_the_first_check_after_a_withdrawal_says_no(
    client: TestClient, container: Container, customers: list[str]
) -> None:
    index = _index(container)
    customer_id = customers[0]
    events = f"{CONSENT}/customers/{customer_id}/events"
    client.post(events, json={"purpose": "newsletter", "kind": "granted", "notice_version": "1.0"})
    assert index.decide(WORKSPACE, customer_id, "newsletter").allowed  # now held in memory
    client.post(events, json={"purpose": "newsletter", "kind": "withdrawn"})
    assert index.decide(WORKSPACE, customer_id, "newsletter").reason == "withdrawn"
    client.post(events, json={"purpose": "newsletter", "kind": "granted", "notice_version": "1.0"})
    assert index.allowed(WORKSPACE, customer_id, "newsletter")
    notice = {"version": "2.0", "language": "de", "text": "Neue Bedingungen."}
    client.post(f"{CONSENT}/purposes/newsletter/notices", json=notice)
    assert index.decide(WORKSPACE, customer_id, "newsletter").reason == "notice changed"


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_change_in_another_process_reaches_the_index(
    client: TestClient, container: Container, settings: Settings, customers: list[str]
) -> None:
    index = _index(container)
    customer_id = customers[1]
    events = f"{CONSENT}/customers/{customer_id}/events"
    client.post(events, json={"purpose": "newsletter", "kind": "granted", "notice_version": "1.0"})
    assert index.allowed(WORKSPACE, customer_id, "newsletter")
    other = build(settings)  # its own engine and connections, as another process has
    try:
        with TestClient(create_app(container=other)) as elsewhere:
            elsewhere.headers["Authorization"] = client.headers["Authorization"]
            assert _event(elsewhere, customer_id, kind="withdrawn").status_code == 201
    finally:
        other.close()
    deadline = time.monotonic() + 10
    while index.allowed(WORKSPACE, customer_id, "newsletter"):  # NOTIFY arrives within milliseconds
        assert time.monotonic() < deadline, "the other process's withdrawal never reached the index"
        time.sleep(0.005)
    assert index.decide(WORKSPACE, customer_id, "newsletter").reason == "withdrawn"


def test_a_warm_up_that_raced_with_a_change_keeps_everyone_but_the_changed_customer(
    client: TestClient, container: Container, customers: list[str]
) -> None:
    index = _index(container)
    for customer_id in customers:
        assert _event(client, customer_id, kind="granted", notice_version="1.0").status_code == 201
    changed, raced = customers[0], []

    @event.listens_for(container.engine, "before_cursor_execute")
    def change_meanwhile(*args: object) -> None:  # a consent change commits while the warm-up reads
        if not raced and "consent_states" in str(args[2]):
            raced.append(True)
            index.forget([(WORKSPACE, changed)])

    try:
        held = index.warm(WORKSPACE)
    finally:
        event.remove(container.engine, "before_cursor_execute", change_meanwhile)
    assert raced
    assert held == len(customers) - 1
    assert (WORKSPACE, changed) not in index._states
    _agree(container, index, customers)  # the changed customer is read again on their next check
