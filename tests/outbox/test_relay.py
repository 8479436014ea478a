"""The outbox and its webhook relay, on SQLite and PostgreSQL, to a real HTTP receiver on loopback: written in
the consent change's transaction or not at all, positions in commit order, Standard Webhooks signatures a
peer library verifies, recipients that get only their purposes and only while allowed, retries with backoff,
dead letters and their replay."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from obhut.consent import service as consent
from obhut.consent.rules import Channel, Kind
from obhut.container import Container, consent_allows
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.outbox import service
from obhut.outbox.adapters.webhook import WebhookSender
from obhut.outbox.models import OutboxCursor, OutboxDelivery, OutboxEvent
from obhut.outbox.tasks import Relay, RelayConfig
from tests.conftest import WORKSPACE, jane
from tests.consent.test_ledger import BASE, CONSENT, define_catalogue
from tests.outbox.receiver import Receiver, receiving


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


def relay(container: Container, **config: Any) -> int:
    """Runs the relay until nothing moves (no NATS here); how many events moved."""
    worker = Relay(container.sessions, container.vault, consent_allows, None, WebhookSender(), RelayConfig(**config))

    async def drain() -> int:
        try:
            return await worker.drain()
        finally:
            await worker.close()

    return asyncio.run(drain())


@pytest.fixture
def catalogue(client: TestClient) -> None:
    define_catalogue(client, ("newsletter", "partner_sharing"))


def _customer(client: TestClient, ref: str = "K-0001") -> str:
    return str(client.post(f"{BASE}/customers", json=jane(external_ref=ref)).json()["id"])


def _register(client: TestClient, url: str, purposes: list[str], topics: list[str] | None = None) -> dict[str, Any]:
    body = {"name": "Mailing service", "role": "processor", "url": url, "topics": topics or ["consent"],
            "purposes": purposes, "categories": ["contact"]}  # fmt: skip
    registered = client.post(f"{BASE}/recipients", json=body)
    assert registered.status_code == 201, registered.text
    found: dict[str, Any] = registered.json()
    return found


def _grant(client: TestClient, customer_id: str, purpose: str = "newsletter", kind: str = "granted") -> str:
    body = {"purpose": purpose, "kind": kind, "notice_version": "1.0" if kind == "granted" else None}
    answered = client.post(f"{CONSENT}/customers/{customer_id}/events", json=body)
    assert answered.status_code == 201, answered.text
    return str(answered.json()["events"][0]["event_id"])


@pytest.mark.usefixtures("catalogue")
def test_a_consent_change_reaches_its_recipient_signed_once_per_idempotency_key(
    client: TestClient, container: Container, receiver: Receiver
) -> None:
    recipient = _register(client, receiver.url, ["newsletter"])
    assert recipient["secret"].startswith("whsec_")
    assert "secret" not in client.get(f"{BASE}/recipients").json()[0]
    customer_id = _customer(client)
    event_id = _grant(client, customer_id)

    assert relay(container) == 1
    assert receiver.ids() == [event_id]  # the ledger event's id is the idempotency key
    delivery = receiver.received[0]
    verified = Webhook(recipient["secret"]).verify(delivery.body, delivery.headers)  # the reference library
    assert verified["type"] == "consent.granted"
    assert verified["data"] == {
        "customer": customer_id, "purpose": "newsletter", "kind": "granted", "until": None, "channel": "api",
        "notice_version": "1.0", "ledger_hash": verified["data"]["ledger_hash"],
    }  # fmt: skip
    assert b"Musterfrau" not in delivery.body
    assert b"example.com" not in delivery.body
    with pytest.raises(Exception, match="signature"):
        Webhook(recipient["secret"]).verify(delivery.body.replace(b"granted", b"denied"), delivery.headers)
    assert relay(container) == 0  # delivered: the cursor moved on
    assert client.get(f"{BASE}/outbox").json() == {"unsequenced": 0, f"webhook:{recipient['recipient_id']}": 0,
                                                  "dead": 0}  # fmt: skip


@pytest.mark.usefixtures("catalogue")
def test_the_outbox_is_written_in_the_changes_transaction_or_not_at_all(
    client: TestClient, container: Container
) -> None:
    customer_id = _customer(client)
    change = consent.Change("newsletter", Kind.GRANTED, Channel.API, "customer", notice_version="1.0")
    with container.sessions() as session:
        consent.append(session, container.vault.open(session, WORKSPACE), WORKSPACE, customer_id, change)
        session.rollback()  # the change rolls back ...
    with container.sessions() as session:
        assert session.scalars(select(OutboxEvent)).all() == []  # ... and its event with it
    with unit_of_work(container.sessions) as session:
        appended = consent.append(session, container.vault.open(session, WORKSPACE), WORKSPACE, customer_id, change)
    with container.sessions() as session:
        [event] = session.scalars(select(OutboxEvent)).all()
    assert (event.event_id, event.topic, event.position) == (appended.event_id, "consent.granted", None)


@pytest.mark.usefixtures("catalogue")
def test_an_event_that_commits_late_is_not_skipped(
    client: TestClient, container: Container, receiver: Receiver
) -> None:
    """Positions follow the sequencer, not the time of writing: an event stamped earlier than one already
    delivered (its transaction committed late) still gets the next position and arrives."""
    _register(client, receiver.url, ["newsletter"])
    first = _grant(client, _customer(client, "K-1"))
    assert relay(container) == 1
    late = _grant(client, _customer(client, "K-2"))
    with unit_of_work(container.sessions) as session:
        session.execute(
            update(OutboxEvent).where(OutboxEvent.event_id == late).values(occurred_at=now() - timedelta(hours=1))
        )
    assert relay(container) == 1
    assert receiver.ids() == [first, late]
    with container.sessions() as session:
        assert service.length(session, WORKSPACE) == 2


@pytest.mark.usefixtures("catalogue")
def test_a_recipient_gets_only_its_purposes_and_uses_only_while_allowed(
    client: TestClient, container: Container, receiver: Receiver
) -> None:
    with receiving() as partner:
        _register(client, receiver.url, ["newsletter"])
        _register(client, partner.url, ["partner_sharing"])
        erasures = _register(client, partner.url, [], topics=["customer.erased"])
        kept = _customer(client, "K-1")
        changed_mind = _customer(client, "K-2")
        granted = _grant(client, kept)
        _grant(client, changed_mind)  # granted, then withdrawn before the relay ran: the grant is not sent
        withdrawn = _grant(client, changed_mind, kind="withdrawn")
        with unit_of_work(container.sessions) as session:
            erased = service.emit(session, WORKSPACE, "customer.erased", customer_id=kept)
        relay(container)
        assert set(receiver.ids()) == {granted, withdrawn}  # a withdrawal always reaches the purpose's recipients
        assert partner.ids() == [erased]  # nothing about newsletter; the erasure recipient gets the erasure
        assert erasures["topics"] == ["customer.erased"]


@pytest.mark.usefixtures("catalogue")
def test_a_failed_delivery_is_retried_on_its_own_then_dead_until_replayed(
    client: TestClient, container: Container, receiver: Receiver
) -> None:
    recipient = _register(client, receiver.url, ["newsletter"])
    destination = f"webhook:{recipient['recipient_id']}"
    bad = _grant(client, _customer(client, "K-1"))
    good = _grant(client, _customer(client, "K-2"))
    receiver.refuse_ids = {bad}
    relay(container, retry_seconds=0, max_attempts=3)  # no backoff in a test: the first try and two retries
    assert receiver.refused == 3
    assert receiver.ids() == [good]  # one bad event holds up nothing
    [dead] = client.get(f"{BASE}/outbox/dead-letters").json()
    assert (dead["destination"], dead["event_id"], dead["attempts"], dead["last_error"]) == (
        destination, bad, 3, "HTTP 503"
    )  # fmt: skip
    assert client.get(f"{BASE}/outbox").json()["dead"] == 1

    receiver.refuse_ids = set()
    replayed = client.post(f"{BASE}/outbox/dead-letters/replay", json={"destination": destination})
    assert replayed.json() == {"replayed": 1}
    relay(container, retry_seconds=0, max_attempts=3)
    assert receiver.ids() == [good, bad]  # the same idempotency key as the first tries
    assert client.get(f"{BASE}/outbox/dead-letters").json() == []


@pytest.mark.usefixtures("catalogue")
def test_a_retry_waits_for_its_backoff(client: TestClient, container: Container, receiver: Receiver) -> None:
    _register(client, receiver.url, ["newsletter"])
    bad = _grant(client, _customer(client, "K-1"))
    _grant(client, _customer(client, "K-2"))
    receiver.refuse_ids = {bad}
    relay(container, retry_seconds=3600)
    receiver.refuse_ids = set()
    relay(container, retry_seconds=3600)
    assert (receiver.refused, bad in receiver.ids()) == (1, False)  # the retry is due in an hour, not now
    with unit_of_work(container.sessions) as session:
        assert service.due(session, WORKSPACE) == []
        [waiting] = session.scalars(select(OutboxDelivery)).all()
        assert (waiting.state, waiting.attempts) == ("retrying", 1)
        assert waiting.next_attempt_at > now() + timedelta(minutes=59)
        waiting.next_attempt_at = now()  # the hour has passed
    relay(container, retry_seconds=3600)
    assert receiver.ids()[-1] == bad


@pytest.mark.usefixtures("catalogue")
def test_a_receiver_that_is_down_holds_its_cursor_with_backoff(
    client: TestClient, container: Container, receiver: Receiver
) -> None:
    recipient = _register(client, receiver.url, ["newsletter"])
    events = [_grant(client, _customer(client, f"K-{n}")) for n in range(3)]
    receiver.refuse = 100  # down: it refuses everything
    relay(container, retry_seconds=60)
    relay(container, retry_seconds=60)
    assert (receiver.refused, receiver.received) == (3, [])  # one try of the batch, then it waits
    with unit_of_work(container.sessions) as session:
        assert session.scalars(select(OutboxDelivery)).all() == []  # no event is given up on
        held = session.get(OutboxCursor, (WORKSPACE, f"webhook:{recipient['recipient_id']}"))
        assert held is not None
        assert (held.position, held.attempts, held.last_error) == (0, 1, "HTTP 503")
        assert held.next_attempt_at is not None
        assert held.next_attempt_at > now() + timedelta(seconds=59)
        held.next_attempt_at = now()  # the backoff has passed, and the receiver is back
    receiver.refuse = 0
    relay(container, retry_seconds=60)
    assert sorted(receiver.ids()) == sorted(events)  # nothing lost; a batch goes out concurrently, and ...
    assert sorted(r.event["position"] for r in receiver.received) == [0, 1, 2]  # ... positions give the order


@pytest.mark.usefixtures("catalogue")
def test_removing_a_recipient_drops_its_retries(client: TestClient, container: Container, receiver: Receiver) -> None:
    recipient = _register(client, receiver.url, ["newsletter"])
    bad = _grant(client, _customer(client, "K-1"))
    _grant(client, _customer(client, "K-2"))
    receiver.refuse_ids = {bad}
    relay(container, retry_seconds=3600)
    with container.sessions() as session:
        assert [row.event_id for row in session.scalars(select(OutboxDelivery))] == [bad]
    assert client.delete(f"{BASE}/recipients/{recipient['recipient_id']}").status_code == 204
    with container.sessions() as session:
        assert session.scalars(select(OutboxDelivery)).all() == []
    assert client.get(f"{BASE}/recipients").json()[0]["active"] is False  # still in the register


@pytest.mark.usefixtures("catalogue")
def test_a_grant_waiting_for_a_retry_is_not_sent_after_the_erasure(
    client: TestClient, container: Container, receiver: Receiver
) -> None:
    _register(client, receiver.url, ["newsletter"], topics=["consent", "customer"])
    customer_id = _customer(client, "K-1")
    grant = _grant(client, customer_id)
    _grant(client, _customer(client, "K-2"))
    receiver.refuse_ids = {grant}
    relay(container, retry_seconds=0, max_attempts=5)  # the grant keeps failing until it is dead ...
    assert client.post(f"{BASE}/customers/{customer_id}/shred").status_code == 200
    receiver.refuse_ids = set()
    with unit_of_work(container.sessions) as session:
        assert service.replay(session, WORKSPACE) == 1
    relay(container, retry_seconds=0, max_attempts=5)  # ... and once the customer is erased, it is dropped
    assert grant not in receiver.ids()
    assert receiver.received[-1].event["type"] == "customer.erased"


def test_registering_checks_purposes_and_topics(client: TestClient) -> None:
    body = {"name": "CRM", "role": "third_party", "url": "https://crm.example.com/hooks", "topics": ["consent"]}
    unknown = client.post(f"{BASE}/recipients", json={**body, "purposes": ["nonexistent"]})
    assert unknown.status_code == 404
    assert "nonexistent" in unknown.json()["detail"]
    bad_topic = client.post(f"{BASE}/recipients", json={**body, "topics": ["Consent Changes"]})
    assert bad_topic.status_code == 422
    bad_url = client.post(f"{BASE}/recipients", json={**body, "url": "ftp://crm.example.com"})
    assert bad_url.status_code == 422


def test_rectification_and_erasure_reach_their_recipients_without_values(
    client: TestClient, container: Container, receiver: Receiver
) -> None:
    _register(client, receiver.url, [], topics=["customer"])
    customer_id = _customer(client)
    assert client.patch(f"{BASE}/customers/{customer_id}", json={"email": "j.m@example.com"}).status_code == 200
    assert client.post(f"{BASE}/customers/{customer_id}/shred").status_code == 200
    relay(container)
    rectified, erased = sorted((r.event for r in receiver.received), key=lambda e: e["position"])
    assert (rectified["type"], rectified["data"]) == (
        "customer.rectified", {"customer": customer_id, "purpose": None, "fields": ["email"]}
    )  # fmt: skip
    assert (erased["type"], erased["data"]["customer"]) == ("customer.erased", customer_id)
    assert not any(b"example.com" in r.body for r in receiver.received)


@pytest.mark.usefixtures("catalogue")
def test_pruning_keeps_what_a_destination_still_needs(
    client: TestClient, container: Container, receiver: Receiver
) -> None:
    _register(client, receiver.url, ["newsletter"])
    delivered = _grant(client, _customer(client, "K-1"))
    failing = _grant(client, _customer(client, "K-2"))
    receiver.refuse_ids = {failing}
    relay(container, retry_seconds=3600)
    waiting = _grant(client, _customer(client, "K-3"))  # sequenced, not yet delivered
    with unit_of_work(container.sessions) as session:
        service.sequence(session, WORKSPACE)
    later = now() + timedelta(days=31)
    with unit_of_work(container.sessions) as session:
        assert service.prune(session, WORKSPACE, now() - timedelta(days=30)) == 0  # too young
        assert service.prune(session, WORKSPACE, later) == 1  # only the delivered one
    with container.sessions() as session:
        kept = set(session.scalars(select(OutboxEvent.event_id)))
    assert kept == {failing, waiting}
    assert delivered not in kept
