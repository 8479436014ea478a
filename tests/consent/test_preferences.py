"""The preference centre and consent statistics through the API, on SQLite and PostgreSQL: a signed link a
customer uses without a staff account (purposes and notices in their language, grant and withdraw with
receipts, Global Privacy Control), links refused when expired, altered, from another workspace or for an
erased customer; counts for dashboards with small numbers withheld."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import OKPKey

from obhut.consent import preferences, statistics
from obhut.container import Container
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.workspaces import service as workspaces
from tests.conftest import WORKSPACE, jane
from tests.consent import test_ledger

BASE = f"/api/v1/workspaces/{WORKSPACE}"
CONSENT = f"{BASE}/consent"
NEWSLETTER = {**test_ledger.NEWSLETTER, "title_de": "Rundbrief"}
NOTICES = {
    ("newsletter", "1.0", "de"): "Wir senden Ihnen Angebote per E-Mail.",
    ("newsletter", "1.0", "en"): "We send you offers by email.",
    ("newsletter", "1.1", "de"): "Wir senden Ihnen Angebote per E-Mail, höchstens monatlich.",
    ("partner_sharing", "1.0", "de"): "Wir geben Ihre Kontaktdaten an Partner weiter.",
}


ENDED = (now() - timedelta(minutes=1)).isoformat()


@pytest.fixture
def catalogue(client: TestClient) -> None:
    purposes = {"newsletter": NEWSLETTER, "partner_sharing": {**NEWSLETTER, "sale_or_sharing": True}}
    for key, body in purposes.items():
        assert client.put(f"{CONSENT}/purposes/{key}", json=body).status_code == 200
    for (key, version, language), text in NOTICES.items():
        notice = {"version": version, "language": language, "text": text}
        assert client.post(f"{CONSENT}/purposes/{key}/notices", json=notice).status_code == 201


@pytest.fixture
def customer_id(client: TestClient, catalogue: None) -> str:
    return str(client.post(f"{BASE}/customers", json=jane()).json()["id"])


def _link(client: TestClient, customer_id: str, **body: Any) -> dict[str, Any]:
    issued = client.post(f"{CONSENT}/customers/{customer_id}/preference-link", json=body or None)
    assert issued.status_code == 201, issued.text
    found: dict[str, Any] = issued.json()
    return found


def _state(client: TestClient, customer_id: str) -> dict[str, str]:
    return {s["purpose"]: s["reason"] for s in client.get(f"{CONSENT}/customers/{customer_id}").json()}


def _segments(token: str) -> list[Any]:
    head, body, _ = token.split(".")
    return [json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in (head, body)]


def _claims_like(token: str, **changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = _segments(token)[1]
    return {**claims, **changes}


class TestIssuingALink:
    def test_a_signed_link_that_expires(self, client: TestClient, container: Container, customer_id: str) -> None:
        before = now()
        link = _link(client, customer_id, minutes=60)
        token = link["token"]
        assert link["url"] == f"{container.settings.public_url}/privacy/{token}"
        header, claims = _segments(token)
        assert (header["alg"], header["typ"]) == ("Ed25519", "preference-link+jwt")
        assert (claims["ws"], claims["sub"]) == (WORKSPACE, customer_id)
        assert claims["exp"] - claims["iat"] == 3600
        assert len(claims["jti"]) == 36
        assert abs(claims["iat"] - int(before.timestamp())) <= 2
        with unit_of_work(container.sessions) as session:
            signer = container.vault.open(session, WORKSPACE).signer(preferences.LINK_KEY)
        x = base64.urlsafe_b64encode(signer.public_key).rstrip(b"=").decode()
        key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": x})
        assert json.loads(jws.deserialize_compact(token, key, algorithms=["Ed25519"]).payload)["sub"] == customer_id

    def test_seven_days_by_default_and_at_most_thirty(self, client: TestClient, customer_id: str) -> None:
        claims = _segments(_link(client, customer_id)["token"])[1]
        assert claims["exp"] - claims["iat"] == 7 * 24 * 3600
        url = f"{CONSENT}/customers/{customer_id}/preference-link"
        assert client.post(url, json={"minutes": 43_201}).status_code == 422
        assert client.post(url, json={"minutes": 0}).status_code == 422

    def test_issuing_is_logged_and_needs_a_customer(self, client: TestClient, customer_id: str) -> None:
        _link(client, customer_id)
        entries = client.get(f"{BASE}/audit/entries", params={"limit": 1000}).json()
        issued = [e for e in entries if e["action"] == "api:consent:link-issue"]
        assert len(issued) == 1
        assert issued[0]["customer"] is not None  # the customer's pseudonym, never the id
        unknown = client.post(f"{CONSENT}/customers/00000000-0000-4000-8000-000000000000/preference-link")
        assert unknown.status_code == 404


class TestTheCentre:
    def test_purposes_with_notices_in_either_language(self, client: TestClient, customer_id: str) -> None:
        token = _link(client, customer_id)["token"]
        client.headers.pop("Authorization")  # the customer has no staff account
        german = client.get(f"/api/v1/preferences/{token}")
        assert german.status_code == 200, german.text
        body = german.json()
        assert (body["workspace"], body["language"]) == (WORKSPACE, "de")
        newsletter, sharing = body["purposes"]
        assert newsletter == {
            "purpose": "newsletter",
            "title": "Rundbrief",
            "description": "Angebote per E-Mail",
            "legal_basis": "consent",
            "data_categories": ["contact"],
            "recipients": "Mailing service (processor)",
            "retention": "until withdrawn",
            "notice": {"version": "1.1", "language": "de", "text": NOTICES["newsletter", "1.1", "de"]},
            "allowed": False,
            "reason": "no consent",
        }
        assert sharing["purpose"] == "partner_sharing"
        english = client.get(f"/api/v1/preferences/{token}", params={"lang": "en"}).json()
        newsletter_en, sharing_en = english["purposes"]
        assert (newsletter_en["title"], newsletter_en["description"]) == ("Newsletter", "Offers by email")
        # 1.1 has no English text: the newest version wins, shown in German
        assert newsletter_en["notice"] == {
            "version": "1.1",
            "language": "de",
            "text": NOTICES["newsletter", "1.1", "de"],
        }
        assert sharing_en["notice"]["language"] == "de"
        assert german.headers["cache-control"] == "no-store"
        header = client.get(f"/api/v1/preferences/{token}", headers={"Accept-Language": "en-GB,en;q=0.9"})
        assert header.json()["language"] == "en"
        assert client.get(f"/api/v1/preferences/{token}", headers={"Accept-Language": "fr"}).json()["language"] == "de"

    def test_an_english_notice_of_the_newest_version(self, client: TestClient, customer_id: str) -> None:
        notice = {"version": "1.1", "language": "en", "text": "We send you offers by email, monthly at most."}
        assert client.post(f"{CONSENT}/purposes/newsletter/notices", json=notice).status_code == 201
        token = _link(client, customer_id)["token"]
        shown = client.get(f"/api/v1/preferences/{token}", params={"lang": "en"}).json()["purposes"][0]["notice"]
        assert shown == {"version": "1.1", "language": "en", "text": notice["text"]}

    def test_reading_is_logged_as_the_customers_own(self, client: TestClient, customer_id: str) -> None:
        token = _link(client, customer_id)["token"]
        assert client.get(f"/api/v1/preferences/{token}").status_code == 200
        entries = client.get(f"{BASE}/audit/entries", params={"limit": 1000}).json()
        issued = next(e for e in entries if e["action"] == "api:consent:link-issue")
        read = [e for e in entries if e["action"] == "api:consent:read" and e["actor"] == "customer"]
        assert len(read) == 1
        assert read[0]["customer"] == issued["customer"]
        assert read[0]["role"] == "customer"


class TestChoosing:
    def test_grant_then_withdraw_effective_at_once(self, client: TestClient, customer_id: str) -> None:
        token = _link(client, customer_id)["token"]
        events = f"/api/v1/preferences/{token}/events"
        granted = client.post(events, json={"purpose": "newsletter", "kind": "granted"}, headers={"User-Agent": "ua"})
        assert granted.status_code == 201, granted.text
        event = granted.json()["events"][0]
        assert (event["kind"], event["channel"], event["actor"]) == ("granted", "web", "customer")
        assert (event["notice_version"], len(event["notice_hash"])) == ("1.1", 64)  # what the centre showed
        key = OKPKey.import_key(client.get(f"{CONSENT}/receipt-key").json()["keys"][0])
        receipt = json.loads(
            jws.deserialize_compact(granted.json()["receipts"][0], key, algorithms=["Ed25519"]).payload
        )
        assert (receipt["state"], receipt["subject"], receipt["notice"]["version"]) == ("granted", customer_id, "1.1")
        assert _state(client, customer_id)["newsletter"] == "granted"
        centre = client.get(f"/api/v1/preferences/{token}").json()["purposes"][0]
        assert (centre["allowed"], centre["reason"]) == (True, "granted")
        assert client.post(events, json={"purpose": "newsletter", "kind": "withdrawn"}).status_code == 201
        assert _state(client, customer_id)["newsletter"] == "withdrawn"  # the very next staff check
        assert client.post(f"{BASE}/purposes", json={"key": "newsletter", "title": "Newsletter"}).status_code == 201
        read = client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "newsletter"})
        assert read.status_code == 403  # a staff read for the purpose, as well
        assert "withdrawn" in read.json()["detail"]
        ledger = client.get(f"{CONSENT}/customers/{customer_id}/ledger").json()
        assert [(e["kind"], e["actor"]) for e in ledger["events"]] == [
            ("granted", "customer"),
            ("withdrawn", "customer"),
        ]
        assert ledger["intact"] is True

    def test_a_named_version_and_language(self, client: TestClient, customer_id: str) -> None:
        token = _link(client, customer_id)["token"]
        body = {"purpose": "newsletter", "kind": "granted", "notice_version": "1.0", "language": "en"}
        event = client.post(f"/api/v1/preferences/{token}/events", json=body).json()["events"][0]
        assert event["notice_version"] == "1.0"
        assert _state(client, customer_id)["newsletter"] == "granted"  # 1.0 and 1.1 share a major
        missing = {**body, "notice_version": "1.1"}  # no English text of 1.1
        assert client.post(f"/api/v1/preferences/{token}/events", json=missing).status_code == 404

    def test_only_a_customers_kinds(self, client: TestClient, customer_id: str) -> None:
        token = _link(client, customer_id)["token"]
        expired = client.post(f"/api/v1/preferences/{token}/events", json={"purpose": "newsletter", "kind": "expired"})
        assert expired.status_code == 422
        unknown = client.post(f"/api/v1/preferences/{token}/events", json={"purpose": "nothing", "kind": "denied"})
        assert unknown.status_code == 404

    def test_global_privacy_control_objects_to_sale_and_sharing(self, client: TestClient, customer_id: str) -> None:
        token = _link(client, customer_id)["token"]
        answered = client.post(
            f"/api/v1/preferences/{token}/events",
            json={"purpose": "newsletter", "kind": "denied"},
            headers={"Sec-GPC": "1"},
        )
        assert answered.status_code == 201, answered.text
        recorded = [(e["purpose"], e["kind"], e["actor"]) for e in answered.json()["events"]]
        assert recorded == [("newsletter", "denied", "customer"), ("partner_sharing", "objected", "customer")]
        assert len(answered.json()["receipts"]) == 2
        assert _state(client, customer_id) == {"newsletter": "denied", "partner_sharing": "objected"}
        actions = [e["action"] for e in client.get(f"{BASE}/audit/entries", params={"limit": 1000}).json()]
        assert {"api:consent:denied", "api:consent:objected"} <= set(actions)


class TestRefusedLinks:
    def _refused(self, client: TestClient, token: str, words: str) -> None:
        for answer in (
            client.get(f"/api/v1/preferences/{token}"),
            client.post(f"/api/v1/preferences/{token}/events", json={"purpose": "newsletter", "kind": "denied"}),
        ):
            assert answer.status_code == 401, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["type"].endswith("/preference-link")
            assert words in answer.json()["detail"]

    def test_an_expired_link(self, client: TestClient, customer_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
        token = _link(client, customer_id, minutes=5)["token"]
        assert client.get(f"/api/v1/preferences/{token}").status_code == 200
        later = now() + timedelta(minutes=6)
        monkeypatch.setattr(preferences, "now", lambda: later)
        self._refused(client, token, "expired on")
        assert _state(client, customer_id)["newsletter"] == "no consent"

    def test_an_altered_link(self, client: TestClient, container: Container, customer_id: str) -> None:
        token = _link(client, customer_id)["token"]
        other = client.post(f"{BASE}/customers", json=jane(external_ref="K-0002")).json()["id"]
        head, _, signature = token.split(".")
        body = json.dumps(_claims_like(token, sub=other)).encode()
        swapped = f"{head}.{base64.urlsafe_b64encode(body).rstrip(b'=').decode()}.{signature}"
        self._refused(client, swapped, "does not verify")
        self._refused(client, token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"), "does not verify")
        with unit_of_work(container.sessions) as session:  # a receipt's key does not make a link
            keyring = container.vault.open(session, WORKSPACE)
            signer = keyring.signer("consent-receipts")
            signing_input = token.rpartition(".")[0]
            signed = base64.urlsafe_b64encode(signer.sign(signing_input.encode())).rstrip(b"=").decode()
        self._refused(client, f"{signing_input}.{signed}", "does not verify")

    def test_malformed_links(self, client: TestClient, customer_id: str) -> None:
        token = _link(client, customer_id)["token"]
        for broken in ("nonsense", token.rpartition(".")[0], "a" * 10 + "." + "b" * 10 + "." + "c" * 10, token + "."):
            self._refused(client, broken, "malformed")

    def test_a_link_of_another_workspace(self, client: TestClient, container: Container, customer_id: str) -> None:
        with unit_of_work(container.sessions) as session:
            workspaces.create(session, container.vault, "beta")
        token = _link(client, customer_id)["token"]
        head, _, signature = token.split(".")
        body = json.dumps(_claims_like(token, ws="beta")).encode()
        moved = f"{head}.{base64.urlsafe_b64encode(body).rstrip(b'=').decode()}.{signature}"
        self._refused(client, moved, "workspace 'beta' did not issue it")
        with unit_of_work(container.sessions) as session:  # beta's key signing for acme's customer
            forged = preferences.sign(container.vault.open(session, "beta"), _claims_like(token))
        self._refused(client, forged, f"workspace '{WORKSPACE}' did not issue it")
        with unit_of_work(container.sessions) as session:
            unknown = preferences.sign(container.vault.open(session, "beta"), _claims_like(token, ws="gamma"))
        self._refused(client, unknown, "workspace 'gamma' did not issue it")

    def test_an_erased_customer_answers_like_a_missing_one(self, client: TestClient, customer_id: str) -> None:
        token = _link(client, customer_id)["token"]
        assert client.post(f"{BASE}/customers/{customer_id}/shred").status_code == 200
        for answer in (
            client.get(f"/api/v1/preferences/{token}"),
            client.post(f"/api/v1/preferences/{token}/events", json={"purpose": "newsletter", "kind": "denied"}),
            client.post(f"{CONSENT}/customers/{customer_id}/preference-link"),
        ):
            assert answer.status_code == 404
            assert answer.json()["detail"] == f"no customer {customer_id} in workspace '{WORKSPACE}'"


class TestStatistics:
    def test_counts_with_small_numbers_withheld(self, client: TestClient, catalogue: None) -> None:
        ids = [client.post(f"{BASE}/customers", json=jane(external_ref=f"S-{n}")).json()["id"] for n in range(12)]
        for customer in ids:
            token = _link(client, customer)["token"]
            client.post(f"/api/v1/preferences/{token}/events", json={"purpose": "newsletter", "kind": "granted"})
        for customer in ids[:3]:
            client.post(f"{CONSENT}/customers/{customer}/events", json={"purpose": "newsletter", "kind": "withdrawn"})
            client.post(f"{CONSENT}/customers/{customer}/events", json={"purpose": "partner_sharing", "kind": "denied"})
        answer = client.get(f"{CONSENT}/statistics", params={"days": 7})
        today = now().date()
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["min_customers"] == 10
        assert (body["since"], body["until"]) == ((today - timedelta(days=6)).isoformat(), today.isoformat())
        newsletter, sharing = body["purposes"]
        assert newsletter["purpose"] == "newsletter"
        zero = {"denied": 0, "expired": 0, "objected": 0}
        assert newsletter["states"] == {"counts": {"granted": None, "withdrawn": None, **zero},
                                        "suppressed": ["granted", "withdrawn"]}  # fmt: skip
        assert sharing["states"] == {
            "counts": {"granted": 0, "denied": None, "withdrawn": 0, "expired": 0, "objected": 0},
            "suppressed": ["denied"],
        }
        assert newsletter["days"][-1]["day"] == today.isoformat()
        assert len(newsletter["days"]) == 7
        today = newsletter["days"][-1]["events"]
        assert today == {"counts": {"granted": 12, "withdrawn": None, **zero}, "suppressed": ["withdrawn"]}
        assert newsletter["days"][0]["events"]["counts"] == dict.fromkeys(statistics.KINDS, 0)
        assert all(customer not in answer.text for customer in ids)

    def test_ten_customers_show(self, client: TestClient, catalogue: None) -> None:
        ids = [client.post(f"{BASE}/customers", json=jane(external_ref=f"T-{n}")).json()["id"] for n in range(10)]
        for customer in ids:
            body = {"purpose": "newsletter", "kind": "granted", "notice_version": "1.0"}
            assert client.post(f"{CONSENT}/customers/{customer}/events", json=body).status_code == 201
            ended = {"purpose": "partner_sharing", "kind": "granted", "notice_version": "1.0", "until": ENDED}
            assert client.post(f"{CONSENT}/customers/{customer}/events", json=ended).status_code == 201
        newsletter, sharing = client.get(f"{CONSENT}/statistics", params={"days": 1}).json()["purposes"]
        assert newsletter["states"] == {"counts": {"granted": 10, "denied": 0, "withdrawn": 0, "expired": 0,
                                                   "objected": 0}, "suppressed": []}  # fmt: skip
        assert sharing["states"]["counts"]["expired"] == 10  # ended, before the expiry job has recorded it
        assert sharing["days"][0]["events"]["counts"]["granted"] == 10
        assert client.post(f"{BASE}/customers/{ids[0]}/shred").status_code == 200
        newsletter = client.get(f"{CONSENT}/statistics", params={"days": 1}).json()["purposes"][0]
        assert newsletter["states"]["counts"]["granted"] is None  # 9 customers left: an erased one counts no more
        assert newsletter["days"][0]["events"]["counts"]["granted"] == 10  # what happened still happened
        actions = [e["action"] for e in client.get(f"{BASE}/audit/entries", params={"limit": 1000}).json()]
        assert actions.count("api:consent:statistics") == 2  # each read logged

    def test_days_are_bounded(self, client: TestClient) -> None:
        assert client.get(f"{CONSENT}/statistics", params={"days": 0}).status_code == 422
        assert client.get(f"{CONSENT}/statistics", params={"days": 367}).status_code == 422
        assert len(client.get(f"{CONSENT}/statistics", params={"days": 366}).json()["purposes"]) == 0


class TestSuppression:
    def test_one_to_nine_customers_are_withheld(self) -> None:
        cells = statistics.suppressed({"granted": (10, 10), "denied": (9, 9), "withdrawn": (25, 3)})
        assert cells.counts == {"granted": 10, "denied": None, "withdrawn": None, "expired": 0, "objected": 0}
        assert cells.suppressed == ["denied", "withdrawn"]  # 25 events, but only 3 customers behind them
