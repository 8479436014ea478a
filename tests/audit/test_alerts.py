"""Suspicious access through the API, on SQLite and PostgreSQL: a support agent hunting card numbers raises an
alert (also posted to a webhook running in this process), which is acknowledged and resolved with a reason;
the access review names what a role may reveal but never did."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from obhut.audit import alerts, rules
from obhut.audit import service as audit
from obhut.audit.adapters.webhook import AlertWebhook
from obhut.audit.models import AuditAlert
from obhut.audit.service import Context, Event
from obhut.audit.tasks import Background
from obhut.container import Container
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from tests.access.staff import bearer, signed_in_with_mfa
from tests.conftest import WORKSPACE, jane, luhn_valid

BASE = f"/api/v1/workspaces/{WORKSPACE}"
AUDIT = f"{BASE}/audit"
CARD = "4111111111111111"


class Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture
def webhook(container: Container) -> Iterator[list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []
    handler = type("Handler", (Receiver,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    container.alert_webhook = AlertWebhook(f"http://127.0.0.1:{server.server_port}/alerts")
    yield received
    server.shutdown()
    server.server_close()


def test_a_card_number_hunt_raises_an_alert_that_is_worked_off(
    client: TestClient, container: Container, webhook: list[dict[str, Any]]
) -> None:
    assert client.post(f"{BASE}/customers", json=jane(card_number=CARD)).status_code == 201
    agent = signed_in_with_mfa(client, container, "agent@example.com", "support_agent")
    colleague = signed_in_with_mfa(client, container, "colleague@example.com", "support_agent")
    lookup = f"{BASE}/customers/lookup"
    for n in range(9):  # mostly numbers that belong to nobody: guessing
        card = CARD if n == 0 else luhn_valid(f"400000000000{n:03d}")
        searched = client.post(lookup, params={"purpose": "support"}, json={"card_number": card}, headers=bearer(agent))
        assert searched.status_code == 200, searched.text
    client.post(lookup, params={"purpose": "support"}, json={"card_number": CARD}, headers=bearer(colleague))

    created = client.post(f"{AUDIT}/alerts/scan", json={})
    assert created.status_code == 200, created.text
    alerts = created.json()
    me = client.get(f"{BASE}/auth/me", headers=bearer(agent)).json()["actor"]
    assert [a["actor"] for a in alerts] == [me]  # one search by the colleague is nothing
    factors = alerts[0]["factors"]
    assert factors[0]["name"] == "rules:financial_searches"
    assert factors[0]["value"] == 9
    assert [w["alert"]["alert_id"] for w in webhook] == [alerts[0]["alert_id"]]
    assert CARD not in json.dumps(webhook)
    assert client.post(f"{AUDIT}/alerts/scan", json={}).json() == []  # scanned again: nothing new

    alert_id = alerts[0]["alert_id"]
    acknowledged = client.post(f"{AUDIT}/alerts/{alert_id}", json={"status": "acknowledged"})
    assert acknowledged.json()["status"] == "acknowledged"
    refused = client.post(f"{AUDIT}/alerts/{alert_id}", json={"status": "resolved"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["pointer"] == "/reason"
    reason = "Agent was testing the payment form with test cards; briefed on test mode"
    resolved = client.post(f"{AUDIT}/alerts/{alert_id}", json={"status": "resolved", "reason": reason})
    assert (resolved.json()["status"], resolved.json()["reason"]) == ("resolved", reason)
    assert client.get(f"{AUDIT}/alerts/{alert_id}").json()["reason"] == reason
    listed = client.get(f"{AUDIT}/alerts").json()  # a list leaves reasons sealed (they may name people)
    assert [(a["reason"], a["has_reason"]) for a in listed] == [(None, True)]
    assert client.get(f"{AUDIT}/alerts/no-such-alert").status_code == 404
    assert [a["alert_id"] for a in client.get(f"{AUDIT}/alerts", params={"status": "open"}).json()] == []
    actions = [e["action"] for e in client.get(f"{AUDIT}/entries").json()]
    assert {"api:alert:acknowledged", "api:alert:resolved", "api:alert:read"} <= set(actions)
    reads = client.get(f"{AUDIT}/entries", params={"action": "api:alert:read"}).json()
    assert [e["target"] for e in reads] == [f"alert:{alert_id}"]  # the one read that unsealed the reason


def test_a_support_agent_cannot_read_alerts(client: TestClient, container: Container) -> None:
    agent = signed_in_with_mfa(client, container, "agent@example.com", "support_agent")
    assert client.get(f"{AUDIT}/alerts", headers=bearer(agent)).status_code == 403
    assert client.get(f"{AUDIT}/entries", headers=bearer(agent)).status_code == 403


def test_the_review_suggests_masking_what_a_role_never_revealed(client: TestClient, container: Container) -> None:
    response = client.post(f"{BASE}/customers", json=jane())
    customer_id = response.json()["id"]
    agent = signed_in_with_mfa(client, container, "agent@example.com", "support_agent")
    client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "support"}, headers=bearer(agent))
    review = client.get(f"{AUDIT}/review", params={"days": 30}).json()
    suggested = {(s["role"], s["purpose"], s["field"]) for s in review["suggestions"]}
    assert ("support_agent", "billing", "iban") in suggested  # allowed for billing, never revealed
    assert ("support_agent", "support", "email") not in suggested  # revealed in the read above
    assert review["usage"]["support_agent"]["staff"] == 1


def test_the_background_work_signs_checkpoints_and_scans_today(container: Container) -> None:
    context = Context("staff:0190b3c2-0000-7000-8000-0000000000bb", "support_agent", "192.0.2.9", "crm", "r")
    search = Event(rules.action("api", "customer", "search"), "ok", search_kind="card lookup", purpose="support")
    with unit_of_work(container.sessions) as session:
        audit.record_many(session, None, WORKSPACE, context, [search] * 9)
    background = Background(container.sessions, container.vault, [], None, every=1.0, scan_every=1.0)
    background.sequence()
    background.scan()
    with container.sessions() as session:
        assert audit.checkpoint_at(session, WORKSPACE, None).size == 9
        found = session.scalars(select(AuditAlert)).all()
    assert [(a.actor, a.status) for a in found] == [(context.actor, "open")]
    assert json.loads(found[0].factors)[0]["name"] == "rules:financial_searches"


def test_a_resolved_alert_reopens_when_the_day_gets_worse(container: Container) -> None:
    context = Context("staff:0190b3c2-0000-7000-8000-0000000000cc", "support_agent", "192.0.2.9", "crm", "r")
    search = Event(rules.action("api", "customer", "search"), "ok", search_kind="card lookup", purpose="support")
    with unit_of_work(container.sessions) as session:
        audit.record_many(session, None, WORKSPACE, context, [search] * 7)
    today = now().date()
    with unit_of_work(container.sessions) as session:
        (first,) = alerts.scan(session, WORKSPACE, [today])
        keyring = container.vault.open(session, WORKSPACE)
        alerts.change(session, keyring, WORKSPACE, first.alert_id, "resolved", "explained: test cards", "staff:x")
    with unit_of_work(container.sessions) as session:
        audit.record_many(session, None, WORKSPACE, context, [search] * 40)
    with unit_of_work(container.sessions) as session:
        reopened = alerts.scan(session, WORKSPACE, [today])
        assert [(a.alert_id, a.status) for a in reopened] == [(first.alert_id, "open")]
