"""Oversight at the console, on SQLite and PostgreSQL: the access log shows what a console action recorded,
filters, downloads and verifies it; alerts are scanned, acknowledged and resolved through the API; the
dashboard shows counts with small ones suppressed, and a support agent sees none of it."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from obhut.audit.models import AuditEntry
from obhut.console.charts import FEWER, count_chart, counted, rate
from obhut.container import Container
from obhut.kit.db import unit_of_work
from tests.access.staff import bearer, signed_in_with_mfa
from tests.conftest import WORKSPACE, jane, luhn_valid
from tests.console.conftest import csrf, enrolled, next_code, sign_in

pytestmark = pytest.mark.usefixtures("backend")
BASE = f"/api/v1/workspaces/{WORKSPACE}"
AUDIT = f"{BASE}/audit"
CARD = "4111111111111111"
PURPOSE = {
    "title_en": "Newsletter", "title_de": "Newsletter", "description_en": "Offers by email",
    "description_de": "Angebote per E-Mail", "legal_basis": "consent", "categories": ["contact"],
    "recipients": "Mailing service (processor)", "retention": "until withdrawn",
}  # fmt: skip


@pytest.fixture
def officer(browser: TestClient, container: Container) -> TestClient:
    """A privacy officer signed in through the form: oversight, customers and data-subject requests."""
    sign_in(browser, "officer", next_code(enrolled(browser, container, "officer", "privacy_officer")))
    return browser


def _customer(client: TestClient, ref: str = "K-1") -> str:
    created = client.post(f"{BASE}/customers", json=jane(external_ref=ref))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _entries(client: TestClient, **wanted: str) -> list[dict[str, Any]]:
    """Entries through the API, each with its position (reading the checkpoint places waiting ones)."""
    assert client.get(f"{AUDIT}/checkpoint").status_code == 200
    found: list[dict[str, Any]] = client.get(f"{AUDIT}/entries", params=wanted).json()
    return found


def _positions(page: str) -> set[int]:
    """The entries a log page lists, by their links."""
    return {int(n) for n in re.findall(r'href="/console/audit/entries/(\d+)"', page)}


def test_the_log_shows_a_console_action_and_the_filter_narrows_it(officer: TestClient, client: TestClient) -> None:
    customer_id = _customer(client)
    shown = officer.post(f"/console/customers/{customer_id}/reveal", data={"csrf": csrf(officer), "purpose": "support"})
    assert shown.status_code == 200
    read = _entries(client, customer_id=customer_id, action="api:customer:read")
    assert [e["role"] for e in read] == ["privacy_officer"]
    entry = read[0]
    (created,) = _entries(client, action="api:customer:create")

    page = officer.get("/console/audit")
    assert page.status_code == 200
    assert " style=" not in page.text
    assert {entry["seq"], created["seq"]} <= _positions(page.text)
    narrowed = officer.get("/console/audit", params={"action": "api:customer:read", "purpose": "support"})
    assert _positions(narrowed.text) == {entry["seq"]}
    other = _entries(client, customer_id=_customer(client, "K-2"))[0]
    by_customer = officer.get("/console/audit", params={"customer": entry["customer"]})
    about = {e["seq"] for e in _entries(client, customer_id=customer_id)}  # also the consent shown beside
    assert _positions(by_customer.text) == about >= {entry["seq"], created["seq"]}
    assert other["seq"] not in about
    assert other["seq"] in _positions(officer.get("/console/audit", params={"category": "financial"}).text)
    later = officer.get("/console/audit", params={"since": "2999-01-01"})
    assert _positions(later.text) == set()
    assert "No entries match." in later.text
    assert officer.get("/console/audit", params={"since": "yesterday"}).status_code == 422

    detail = officer.get(f"/console/audit/entries/{entry['seq']}")
    assert detail.status_code == 200
    for value in (entry["request_id"], entry["customer"], entry["actor"], "testclient", "api:customer:read"):
        assert value in detail.text
    assert "Musterfrau" not in detail.text  # the log holds no personal data


def test_downloads_carry_the_filter(officer: TestClient, client: TestClient) -> None:
    customer_id = _customer(client)
    client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "support"})
    exported = officer.get("/console/audit/export.csv", params={"action": "api:customer:read"})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"] == f'attachment; filename="access-log-{WORKSPACE}.csv"'
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["action"] for r in rows] == ["api:customer:read"]
    as_json = officer.get("/console/audit/export.json", params={"action": "api:customer:create"})
    assert as_json.headers["content-disposition"].endswith('.json"')
    assert [e["action"] for e in json.loads(as_json.text)] == ["api:customer:create"]


def test_the_checkpoint_is_shown_and_verify_now_finds_tampering(
    officer: TestClient, client: TestClient, container: Container
) -> None:
    _customer(client)
    page = officer.get("/console/audit")
    root = client.get(f"{AUDIT}/checkpoint").text.split("\n")[2]
    assert root in page.text
    assert "Last signed checkpoint" in page.text
    verified = officer.post("/console/audit/verify", data={"csrf": csrf(officer)})
    assert verified.status_code == 200
    assert re.search(r"Verified: all \d+ entries are as they were logged", verified.text)
    recorded = client.get(f"{AUDIT}/entries", params={"action": "api:audit:verify"}).json()
    assert [(e["role"], e["outcome"]) for e in recorded] == [("privacy_officer", "ok")]
    with unit_of_work(container.sessions) as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 0).values(purpose="marketing"))
    tampered = officer.post("/console/audit/verify", data={"csrf": csrf(officer)})
    assert "The log does not verify." in tampered.text
    assert "First bad position: 0" in tampered.text


def test_an_alert_is_scanned_acknowledged_and_resolved(
    officer: TestClient, client: TestClient, container: Container
) -> None:
    assert client.post(f"{BASE}/customers", json=jane(card_number=CARD)).status_code == 201
    agent = signed_in_with_mfa(client, container, "hunter@example.com", "support_agent")
    for n in range(9):  # card numbers that belong to nobody: guessing
        card = CARD if n == 0 else luhn_valid(f"400000000000{n:03d}")
        client.post(f"{BASE}/customers/lookup", params={"purpose": "support"}, json={"card_number": card},
                    headers=bearer(agent))  # fmt: skip
    officer.get("/console/alerts")
    scanned = officer.post("/console/alerts/scan", data={"csrf": csrf(officer)})
    assert "Scan finished: 1 new or reopened alert." in scanned.text
    (alert,) = client.get(f"{AUDIT}/alerts", params={"status": "open"}).json()
    assert f"/console/alerts/{alert['alert_id']}" in scanned.text
    url = f"/console/alerts/{alert['alert_id']}"
    detail = officer.get(url)
    assert "rules:financial_searches" in detail.text
    assert " style=" not in detail.text
    assert f"{alert['score']} of 100" in detail.text
    assert alert["severity"] in detail.text

    done = officer.post(url, data={"csrf": csrf(officer), "status": "acknowledged"})
    assert "The alert is acknowledged." in done.text
    assert client.get(f"{AUDIT}/alerts/{alert['alert_id']}").json()["status"] == "acknowledged"
    refused = officer.post(url, data={"csrf": csrf(officer), "status": "resolved", "reason": " "})
    assert refused.status_code == 422
    assert "say why the alert is resolved" in refused.text
    reason = "Testing the payment form with test cards; briefed on test mode"
    officer.post(url, data={"csrf": csrf(officer), "status": "resolved", "reason": reason})
    changed = client.get(f"{AUDIT}/alerts/{alert['alert_id']}").json()
    assert (changed["status"], changed["reason"]) == ("resolved", reason)
    resolved = officer.get("/console/alerts", params={"status": "resolved"})
    assert url in resolved.text
    assert url not in officer.get("/console/alerts").text  # open ones by default


def test_the_review_lists_its_suggestions(officer: TestClient, client: TestClient) -> None:
    review = client.get(f"{AUDIT}/review", params={"days": 30}).json()
    page = officer.get("/console/alerts/review", params={"days": 30})
    assert page.status_code == 200
    assert review["suggestions"], "a new workspace has reveals nobody used"
    assert all(s["text"] in page.text for s in review["suggestions"][:5])


def test_a_support_agent_is_refused_oversight_and_sees_no_panels(agent: TestClient) -> None:
    for url in ("/console/audit", "/console/alerts", "/console/audit/export.csv", "/console/alerts/review"):
        assert agent.get(url).status_code == 403, url
    dashboard = agent.get("/console")
    assert dashboard.status_code == 200
    assert "Your role has no figures to see here" in dashboard.text
    assert 'role="img"' not in dashboard.text


def test_the_dashboard_suppresses_small_counts(officer: TestClient, client: TestClient) -> None:
    for key in ("newsletter", "partner_sharing"):
        assert client.put(f"{BASE}/consent/purposes/{key}", json=PURPOSE).status_code == 200
        notice = {"version": "1.0", "language": "de", "text": f"Wir nutzen Ihre Daten für {key}."}
        assert client.post(f"{BASE}/consent/purposes/{key}/notices", json=notice).status_code == 201
    customers = [_customer(client, f"K-{n}") for n in range(10)]
    for n, customer_id in enumerate(customers):
        for key in ("newsletter",) if n >= 3 else ("newsletter", "partner_sharing"):
            body = {"purpose": key, "kind": "granted", "notice_version": "1.0"}
            assert client.post(f"{BASE}/consent/customers/{customer_id}/events", json=body).status_code == 201
    opened = client.post(f"{BASE}/requests", json={"customer_id": customers[0], "right": "access"})
    assert opened.status_code == 201, opened.text

    page = officer.get("/console").text
    assert " style=" not in page
    assert "<script>" not in page
    newsletter, sharing = page.split("<h3>newsletter</h3>")[1].split("<h3>partner_sharing</h3>")
    assert "Customers consenting now: <strong>100%</strong>" in newsletter  # ten customers
    assert "Customers consenting now: <strong>fewer than 10</strong>" in sharing  # three
    assert "<td>later</td><td>fewer than 10</td>" in page  # one open request, due in a month
    assert "<td>overdue</td><td>0</td>" in page
    assert "<td>high</td><td>0</td>" in page  # alerts are about staff: shown as they are
    assert page.count('role="img"') == page.count('class="sr-only"') >= 4


def test_one_helper_suppresses_counts_behind_fewer_than_ten_customers() -> None:
    assert [counted(n) for n in (0, 1, 9, 10, 1234)] == ["0", FEWER, FEWER, "10", "1,234"]
    assert counted(None) == FEWER  # withheld by the API
    assert (counted(50, customers=9), counted(50, customers=10)) == (FEWER, "50")
    chart = count_chart("Test", "Role", "Entries", [("a", 40, 20), ("b", 5, 5), ("c", 20, 12)])
    assert [(b.text, b.share) for b in chart.bars] == [("40", 1.0), (FEWER, 0.0), ("20", 0.5)]
    assert rate({"granted": 30, "denied": 10}, "none").text == "75%"
    assert rate({"granted": None, "denied": 10}, "none").suppressed
    assert rate({"granted": 0, "denied": 0}, "no events").text == "no events"
