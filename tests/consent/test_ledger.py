"""Consent through the API, on SQLite and PostgreSQL: the catalogue and notices, grants answered with receipts
anyone can verify, withdrawal effective on the next request, expiry, a new major notice, objections (also
by Global Privacy Control), the chained ledger, and a staff read for a consent purpose failing closed."""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import OKPKey
from sqlalchemy import select, update

from obhut.consent.models import ConsentEvent
from obhut.consent.tasks import expire_all
from obhut.container import Container
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from tests.conftest import WORKSPACE, jane

BASE = f"/api/v1/workspaces/{WORKSPACE}"
CONSENT = f"{BASE}/consent"
NEWSLETTER = {
    "title_en": "Newsletter",
    "title_de": "Newsletter",
    "description_en": "Offers by email",
    "description_de": "Angebote per E-Mail",
    "legal_basis": "consent",
    "categories": ["contact"],
    "recipients": "Mailing service (processor)",
    "retention": "until withdrawn",
}


def define_catalogue(
    client: TestClient, keys: tuple[str, ...] = ("newsletter", "fraud_checks", "partner_sharing")
) -> None:
    """Purposes on consent, on legitimate interest and for sale or sharing, each with a notice 1.0 (de)."""
    bodies = {
        "newsletter": NEWSLETTER,
        "fraud_checks": {**NEWSLETTER, "legal_basis": "legitimate_interest"},
        "partner_sharing": {**NEWSLETTER, "sale_or_sharing": True},
    }
    for key in keys:
        assert client.put(f"{CONSENT}/purposes/{key}", json=bodies[key]).status_code == 200
        notice = {"version": "1.0", "language": "de", "text": f"Wir nutzen Ihre Daten für {key}."}
        assert client.post(f"{CONSENT}/purposes/{key}/notices", json=notice).status_code == 201


@pytest.fixture
def customer_id(client: TestClient) -> str:
    define_catalogue(client)
    created = client.post(f"{BASE}/customers", json=jane())
    return str(created.json()["id"])


def _state(client: TestClient, customer_id: str) -> dict[str, str]:
    states = client.get(f"{CONSENT}/customers/{customer_id}").json()
    return {s["purpose"]: s["reason"] for s in states}


def _event(client: TestClient, customer_id: str, **body: Any) -> Any:
    return client.post(f"{CONSENT}/customers/{customer_id}/events", json={"purpose": "newsletter", **body})


def test_grant_with_a_verifiable_receipt_then_withdraw(client: TestClient, customer_id: str) -> None:
    assert _state(client, customer_id)["newsletter"] == "no consent"
    granted = _event(client, customer_id, kind="granted", notice_version="1.0", channel="web")
    assert granted.status_code == 201, granted.text
    assert _state(client, customer_id)["newsletter"] == "granted"
    key = OKPKey.import_key(client.get(f"{CONSENT}/receipt-key").json()["keys"][0])
    claims = json.loads(jws.deserialize_compact(granted.json()["receipts"][0], key, algorithms=["Ed25519"]).payload)
    assert claims["purpose"]["key"] == "newsletter"
    assert claims["state"] == "granted"
    assert claims["notice"]["version"] == "1.0"
    assert len(claims["notice"]["sha256"]) == 64
    assert claims["how_to_withdraw"]
    forged = granted.json()["receipts"][0][:-4] + "AAAA"
    with pytest.raises(Exception, match="signature"):
        jws.deserialize_compact(forged, key, algorithms=["Ed25519"])
    assert _event(client, customer_id, kind="withdrawn").status_code == 201
    assert _state(client, customer_id)["newsletter"] == "withdrawn"  # on the very next request
    ledger = client.get(f"{CONSENT}/customers/{customer_id}/ledger").json()
    assert [e["kind"] for e in ledger["events"]] == ["granted", "withdrawn"]
    assert ledger["intact"] is True
    assert ledger["events"][1]["hash"] != ledger["events"][0]["hash"]


def test_a_grant_needs_the_notice_it_was_given_to(client: TestClient, customer_id: str) -> None:
    refused = _event(client, customer_id, kind="granted")
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["pointer"] == "/notice_version"
    assert _event(client, customer_id, kind="granted", notice_version="9.0").status_code == 404


def test_time_limits_and_a_new_major_notice_make_consent_lapse(
    client: TestClient, container: Container, customer_id: str
) -> None:
    ended = (now() - timedelta(minutes=1)).isoformat()
    assert _event(client, customer_id, kind="granted", notice_version="1.0", until=ended).status_code == 201
    assert _state(client, customer_id)["newsletter"] == "expired"  # enforced at read time, no job needed
    assert expire_all(container.sessions, container.vault) == 1  # what `serve` runs every few minutes
    assert expire_all(container.sessions, container.vault) == 0
    ledger = client.get(f"{CONSENT}/customers/{customer_id}/ledger").json()
    assert [e["kind"] for e in ledger["events"]] == ["granted", "expired"]
    assert _event(client, customer_id, kind="granted", notice_version="1.0").status_code == 201
    assert _state(client, customer_id)["newsletter"] == "granted"
    major = {"version": "2.0", "language": "de", "text": "Neu: auch per SMS."}
    assert client.post(f"{CONSENT}/purposes/newsletter/notices", json=major).status_code == 201
    assert _state(client, customer_id)["newsletter"] == "notice changed"
    assert _event(client, customer_id, kind="granted", notice_version="2.0").status_code == 201
    assert _state(client, customer_id)["newsletter"] == "granted"


def test_objections_and_global_privacy_control(client: TestClient, customer_id: str) -> None:
    assert _state(client, customer_id)["fraud_checks"] == "legitimate_interest"
    objected = _event(client, customer_id, purpose="fraud_checks", kind="objected")
    assert objected.status_code == 201
    assert _state(client, customer_id)["fraud_checks"] == "objected"
    with_gpc = client.post(
        f"{CONSENT}/customers/{customer_id}/events",
        json={"purpose": "newsletter", "kind": "granted", "notice_version": "1.0"},
        headers={"Sec-GPC": "1"},
    )
    assert [e["purpose"] for e in with_gpc.json()["events"]] == ["newsletter", "partner_sharing"]
    assert _state(client, customer_id)["partner_sharing"] == "objected"


def test_the_ledger_shows_tampering_and_keeps_addresses_sealed(
    client: TestClient, container: Container, customer_id: str
) -> None:
    for kind in ("granted", "withdrawn", "granted"):
        _event(client, customer_id, kind=kind, notice_version="1.0")
    with unit_of_work(container.sessions) as session:
        stored = session.scalars(select(ConsentEvent).order_by(ConsentEvent.position)).all()
        assert all(e.source_sealed and b"testclient" not in e.source_sealed for e in stored)
        session.execute(update(ConsentEvent).where(ConsentEvent.position == 1).values(kind="granted"))
    ledger = client.get(f"{CONSENT}/customers/{customer_id}/ledger").json()
    assert (ledger["intact"], ledger["first_broken"]) == (False, 1)


def test_a_staff_read_for_a_consent_purpose_fails_closed(client: TestClient, customer_id: str) -> None:
    added = client.post(f"{BASE}/purposes", json={"key": "newsletter", "title": "Newsletter"})
    assert added.status_code == 201, added.text
    read = f"{BASE}/customers/{customer_id}"
    refused = client.get(read, params={"purpose": "newsletter"})
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/consent-required")
    assert "no consent" in refused.json()["detail"]
    assert _event(client, customer_id, kind="granted", notice_version="1.0").status_code == 201
    assert client.get(read, params={"purpose": "newsletter"}).status_code == 200
    assert _event(client, customer_id, kind="withdrawn").status_code == 201
    assert client.get(read, params={"purpose": "newsletter"}).status_code == 403  # the very next request
    assert client.get(read, params={"purpose": "support"}).status_code == 200  # not a consent purpose


def test_review_findings_hold(client: TestClient, container: Container, customer_id: str) -> None:
    """An objection stands through later refusals; removing the newest event shows; a time given with an
    offset hashes the same when read back in UTC; a naive one is refused; reading consent is logged."""
    _event(client, customer_id, purpose="fraud_checks", kind="objected")
    _event(client, customer_id, purpose="fraud_checks", kind="withdrawn")
    assert _state(client, customer_id)["fraud_checks"] == "objected"
    later = (now() + timedelta(days=30)).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert _event(client, customer_id, kind="granted", notice_version="1.0", until=later).status_code == 201
    assert client.get(f"{CONSENT}/customers/{customer_id}/ledger").json()["intact"] is True
    naive = _event(client, customer_id, kind="granted", notice_version="1.0", until="2030-01-01T12:00:00")
    assert naive.status_code == 422
    assert _event(client, customer_id, kind="withdrawn").status_code == 201
    with unit_of_work(container.sessions) as session:
        newest = session.scalars(select(ConsentEvent).order_by(ConsentEvent.position.desc()).limit(1)).one()
        session.delete(newest)
    ledger = client.get(f"{CONSENT}/customers/{customer_id}/ledger").json()
    assert (ledger["intact"], ledger["first_broken"]) == (False, 3)
    actions = [e["action"] for e in client.get(f"{BASE}/audit/entries", params={"limit": 1000}).json()]
    assert {"api:consent:read", "api:consent:ledger-read"} <= set(actions)


def test_an_erased_customer_does_not_stop_expiry_for_others(client: TestClient, container: Container) -> None:
    assert client.put(f"{CONSENT}/purposes/newsletter", json=NEWSLETTER).status_code == 200
    notice = {"version": "1.0", "language": "de", "text": "Newsletter."}
    assert client.post(f"{CONSENT}/purposes/newsletter/notices", json=notice).status_code == 201
    ended = (now() - timedelta(minutes=1)).isoformat()
    first, second = (client.post(f"{BASE}/customers", json=jane(external_ref=r)).json()["id"] for r in ("A", "B"))
    for customer in (first, second):
        assert _event(client, customer, kind="granted", notice_version="1.0", until=ended).status_code == 201
    assert client.delete(f"{BASE}/customers/{first}").status_code == 204
    assert expire_all(container.sessions, container.vault) == 1
    kinds = [e["kind"] for e in client.get(f"{CONSENT}/customers/{second}/ledger").json()["events"]]
    assert kinds == ["granted", "expired"]
