"""Data-subject requests through the API, on SQLite and PostgreSQL: intake by staff and by the customer's
signed link, verification before anything is released, the deadline and its one extension, the export ZIP
(JSON with its schema, and a report in the customer's language), rectification, restriction that every
path respects, objection, and erasure across every domain with its signed certificate."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from typing import Any

from fastapi.testclient import TestClient

from obhut.consent import service as consent
from obhut.container import Container
from obhut.kit.db import unit_of_work
from obhut.vault.cipher import signature_valid
from tests.conftest import WORKSPACE, jane

BASE = f"/api/v1/workspaces/{WORKSPACE}"
REQUESTS = f"{BASE}/requests"


def _open(client: TestClient, customer_id: str, right: str, **body: Any) -> dict[str, Any]:
    opened = client.post(REQUESTS, json={"customer_id": customer_id, "right": right, **body})
    assert opened.status_code == 201, opened.text
    found: dict[str, Any] = opened.json()
    return found


def _verified(client: TestClient, customer_id: str, right: str, **body: Any) -> str:
    request_id = str(_open(client, customer_id, right, **body)["id"])
    verified = client.post(f"{REQUESTS}/{request_id}/verify", json={"method": "id-document"})
    assert verified.status_code == 200, verified.text
    return request_id


def _payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    found: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return found


def _link(client: TestClient, customer_id: str) -> str:
    issued = client.post(f"{BASE}/consent/customers/{customer_id}/preference-link")
    assert issued.status_code == 201
    return str(issued.json()["token"])


class TestIntake:
    def test_a_request_starts_unverified_with_a_deadline_a_month_out(
        self, client: TestClient, customer_id: str
    ) -> None:
        opened = _open(client, customer_id, "access", language="en")
        assert opened["status"] == "received"
        received, deadline = opened["received_at"][:10], opened["deadline"][:10]
        assert (int(deadline[5:7]) - int(received[5:7])) % 12 == 1
        refused = client.get(f"{REQUESTS}/{opened['id']}/export")
        assert refused.status_code == 409
        assert "verify the requester's identity" in refused.json()["detail"]

    def test_a_deadline_moves_once_with_a_reason(self, client: TestClient, customer_id: str) -> None:
        opened = _open(client, customer_id, "access")
        extended = client.post(
            f"{REQUESTS}/{opened['id']}/extend", json={"months": 2, "reason": "many systems to search"}
        )
        assert extended.status_code == 200
        assert extended.json()["extended"] is True
        assert extended.json()["deadline"] > opened["deadline"]
        again = client.post(f"{REQUESTS}/{opened['id']}/extend", json={"months": 1, "reason": "still more to search"})
        assert again.status_code == 409
        assert "once" in again.json()["detail"]

    def test_a_bad_correction_is_refused_at_intake(self, client: TestClient, customer_id: str) -> None:
        bad = client.post(REQUESTS, json={"customer_id": customer_id, "right": "rectification",
                                          "details": {"fields": {"email": "not-an-email"}}})  # fmt: skip
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["pointer"] == "/email"
        assert client.get(REQUESTS).json()["requests"] == []

    def test_every_step_is_in_the_access_log(self, client: TestClient, customer_id: str) -> None:
        request_id = _verified(client, customer_id, "restriction")
        assert client.post(f"{REQUESTS}/{request_id}/complete").status_code == 200
        entries = client.get(f"{BASE}/audit/entries", params={"customer_id": customer_id, "limit": 50}).json()
        actions = [e["action"] for e in entries]
        assert {"api:request:open", "api:request:verify", "api:request:complete"} <= set(actions)


class TestExport:
    def test_the_zip_holds_every_domain_in_json_and_a_report_in_the_customers_language(
        self, client: TestClient, customer_id: str
    ) -> None:
        request_id = _verified(client, customer_id, "access", language="de")
        download = client.get(f"{REQUESTS}/{request_id}/export")
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/zip"
        bundle = zipfile.ZipFile(io.BytesIO(download.content))
        assert sorted(bundle.namelist()) == ["data.json", "report.html", "schema.json"]
        data = json.loads(bundle.read("data.json"))
        assert data["schema"] == json.loads(bundle.read("schema.json"))["$id"]
        domains = data["domains"]
        assert set(domains) == {"access", "audit", "consent", "outbox", "rights", "retention", "customers"}
        assert domains["customers"]["fields"]["email"] == "Jane.Musterfrau@example.com"
        assert domains["customers"]["fields"]["card"]["last4"] == "1111"
        assert [e["event"] for e in domains["consent"]["events"]] == ["granted"]
        assert domains["consent"]["chain_intact"] is True
        assert _payload(domains["consent"]["receipts"]["newsletter"])["state"] == "granted"
        looked = domains["audit"]["who_looked_at_my_data"]
        assert any(e["why"] == "Customer support" for e in looked)
        assert [r["right"] for r in domains["rights"]["requests"]] == ["access"]
        report = bundle.read("report.html").decode()
        assert '<html lang="de">' in report
        assert "Wer Ihre Daten angesehen hat" in report
        assert "Musterfrau" in report
        assert client.get(f"{REQUESTS}/{request_id}").json()["status"] == "completed"

    def test_the_customer_asks_through_their_link_and_only_they_download_it(
        self, client: TestClient, customer_id: str
    ) -> None:
        token = _link(client, customer_id)
        asked = client.post(f"/api/v1/preferences/{token}/requests", json={"right": "portability", "language": "en"})
        assert asked.status_code == 201, asked.text
        assert asked.json()["status"] == "verified"
        assert asked.json()["verification"] == "signed-link"
        mine = client.get(f"/api/v1/preferences/{token}/requests/{asked.json()['id']}/export")
        assert mine.status_code == 200
        report = zipfile.ZipFile(io.BytesIO(mine.content)).read("report.html").decode()
        assert "Who looked at your data" in report
        other = str(client.post(f"{BASE}/customers", json=jane(external_ref="K-0002")).json()["id"])
        theirs = client.get(f"/api/v1/preferences/{_link(client, other)}/requests/{asked.json()['id']}/export")
        assert theirs.status_code == 404


class TestAnswering:
    def test_a_rectification_corrects_the_fields_it_names(self, client: TestClient, customer_id: str) -> None:
        fields = {"email": "jane.neu@example.com"}
        request_id = _verified(client, customer_id, "rectification", details={"fields": fields})
        done = client.post(f"{REQUESTS}/{request_id}/complete")
        assert done.status_code == 200
        assert done.json()["outcome"] == "corrected: email"
        shown = client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "support"}).json()
        assert shown["email"] == "jane.neu@example.com"

    def test_a_restriction_stops_every_use_but_storage(self, client: TestClient, customer_id: str) -> None:
        token = _link(client, customer_id)
        asked = client.post(f"/api/v1/preferences/{token}/requests", json={"right": "restriction"})
        assert asked.json()["status"] == "completed"
        read = client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "support"})
        assert read.status_code == 403
        assert "restricted" in read.json()["detail"]
        masked = client.get(f"{BASE}/customers/{customer_id}")
        assert masked.status_code == 200
        assert masked.json()["email"] != "Jane.Musterfrau@example.com"
        found = client.post(
            f"{BASE}/customers/lookup", params={"purpose": "support"}, json={"email": "Jane.Musterfrau@example.com"}
        )
        assert found.status_code == 200
        assert found.json()["customers"][0]["disclosure"]["email"] == "masked"
        state = {s["purpose"]: s["reason"] for s in client.get(f"{BASE}/consent/customers/{customer_id}").json()}
        assert state["newsletter"] == "restricted"

    def test_an_objection_covers_the_purposes_named(self, client: TestClient, customer_id: str) -> None:
        request_id = _verified(client, customer_id, "objection", details={"purposes": ["fraud_checks"]})
        assert client.post(f"{REQUESTS}/{request_id}/complete").status_code == 200
        state = {s["purpose"]: s["reason"] for s in client.get(f"{BASE}/consent/customers/{customer_id}").json()}
        assert state["fraud_checks"] == "objected"


class TestErasure:
    def test_erasure_reaches_every_domain_and_is_certified(
        self, client: TestClient, container: Container, customer_id: str
    ) -> None:
        request_id = _verified(client, customer_id, "erasure")
        done = client.post(f"{REQUESTS}/{request_id}/complete")
        assert done.status_code == 200, done.text
        certificate = done.json()["certificate"]
        claims = _payload(certificate)
        assert claims["subject"] == customer_id
        assert claims["data_key"] == "destroyed"
        assert "data key (shredded)" in claims["erased"]["customers"]
        assert {k["why"][:20] for k in claims["kept"]} >= {"proof of what you ag"}
        jwks = client.get(f"{BASE}/requests/certificate-key")
        signing_input, _, signature = certificate.rpartition(".")
        key = base64.urlsafe_b64decode(jwks.json()["keys"][0]["x"] + "==")
        assert signature_valid(
            key, signing_input.encode(), base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        )
        assert client.get(f"{BASE}/customers/{customer_id}").status_code == 410
        with unit_of_work(container.sessions) as session:
            assert not consent.check(session, WORKSPACE, customer_id, "fraud_checks").allowed
        assert container.rights.ledger.entries()[-1].customer_id == customer_id
        again = client.post(REQUESTS, json={"customer_id": customer_id, "right": "erasure"})
        assert again.status_code == 404

    def test_a_retention_duty_keeps_its_category_restricted_and_says_so(
        self, client: TestClient, customer_id: str
    ) -> None:
        duty = {"days": 3650, "anchor": "contract_end", "action": "delete", "legal_duty": "AO §147 (10 years)"}
        assert client.put(f"{BASE}/retention/policies/financial", json=duty).status_code == 200
        request_id = _verified(client, customer_id, "erasure")
        claims = _payload(client.post(f"{REQUESTS}/{request_id}/complete").json()["certificate"])
        assert claims["data_key"].startswith("kept")
        assert any(
            k["what"].startswith("financial data (iban, card)") and k["why"] == duty["legal_duty"]
            for k in claims["kept"]
        )
        assert "email" in claims["erased"]["customers"]
        assert client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "support"}).status_code == 403
        masked = client.get(f"{BASE}/customers/{customer_id}").json()
        assert masked["email"] is None
        assert masked["iban"] is not None
