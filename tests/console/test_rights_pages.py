"""Data-subject requests and retention at the console: the queue by deadline, the steps through the
forms, the export download, an erasure's certificate, policies, holds, contract end and backups."""

from __future__ import annotations

import base64
import html
import io
import json
import zipfile
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from obhut.container import Container
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.retention import backups
from obhut.rights.models import SubjectRequest
from tests.conftest import WORKSPACE, jane
from tests.console.conftest import csrf, enrolled, next_code, sign_in

pytestmark = pytest.mark.usefixtures("backend")
BASE = f"/api/v1/workspaces/{WORKSPACE}"


@pytest.fixture
def officer(browser: TestClient, container: Container) -> TestClient:
    """A privacy officer signed in through the form: rights:manage, customers:write and customers:delete."""
    sign_in(browser, "officer", next_code(enrolled(browser, container, "officer", "privacy_officer")))
    return browser


@pytest.fixture
def customer_id(client: TestClient) -> str:
    created = client.post(f"{BASE}/customers", json=jane())
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _opened(client: TestClient, customer_id: str, right: str) -> dict[str, Any]:
    opened = client.post(f"{BASE}/requests", json={"customer_id": customer_id, "right": right})
    assert opened.status_code == 201, opened.text
    found: dict[str, Any] = opened.json()
    return found


def _post(page: TestClient, url: str, **form: str) -> Any:
    return page.post(url, data={"csrf": csrf(page), **form}, follow_redirects=False)


def _row(page: str, marker: str) -> str:
    """The table row carrying `marker` (a data- attribute), to check its cells."""
    start = page.index(marker)
    return page[start : page.index("</tr>", start)]


def _section(page: str, table_id: str) -> str:
    start = page.index(f'id="{table_id}"')
    return page[start : page.index("</table>", start)]


class TestRequests:
    def test_the_queue_shows_deadlines_and_what_is_overdue(
        self, officer: TestClient, client: TestClient, container: Container, customer_id: str
    ) -> None:
        fresh = _opened(client, customer_id, "access")
        late = _opened(client, customer_id, "restriction")
        with unit_of_work(container.sessions) as session:
            row = session.get(SubjectRequest, (WORKSPACE, late["id"]))
            assert row is not None
            row.deadline = datetime.combine(now().date() - timedelta(days=3), time(12), tzinfo=UTC)  # 3 days back
        page = officer.get("/console/requests")
        assert page.status_code == 200
        first, second = (
            _row(page.text, f'data-request="{late["id"]}"'),
            _row(page.text, f'data-request="{fresh["id"]}"'),
        )
        assert page.text.index(first) < page.text.index(second)  # soonest deadline first
        assert "overdue" in first
        assert "by 3 days" in first
        assert fresh["deadline"][:10] in second
        assert "days left" in second
        assert "overdue" not in second
        assert "Musterfrau" not in page.text

    def test_an_access_request_is_verified_completed_and_exported_through_the_forms(
        self, officer: TestClient, client: TestClient, customer_id: str
    ) -> None:
        form = officer.get(f"/console/requests/new?customer={customer_id}")
        assert f'value="{customer_id}"' in form.text
        opened = _post(officer, "/console/requests/new", customer_id=customer_id, right="access", language="en")
        assert opened.status_code == 303, opened.text
        request_id = opened.headers["location"].split("/")[-1].split("?")[0]
        assert client.get(f"{BASE}/requests/{request_id}").json()["status"] == "received"
        assert officer.get(f"/console/requests/{request_id}/export").status_code == 409  # not verified yet
        short = _post(officer, f"/console/requests/{request_id}/verify", method="x")
        assert short.status_code == 422
        assert "method" in short.text
        verified = _post(officer, f"/console/requests/{request_id}/verify", method="id-document")
        assert verified.status_code == 303
        shown = officer.get(verified.headers["location"])
        assert "identity is recorded as verified" in shown.text
        assert "Download export" in shown.text
        api = client.get(f"{BASE}/requests/{request_id}").json()
        assert (api["status"], api["verification"]) == ("verified", "id-document")
        assert 'action="/console/requests/{request_id}/complete"' not in shown.text  # the download answers it
        download = officer.get(f"/console/requests/{request_id}/export")
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/zip"
        assert download.headers["content-disposition"] == f'attachment; filename="export-{request_id}.zip"'
        assert download.headers["cache-control"] == "no-store"
        with zipfile.ZipFile(io.BytesIO(download.content)) as bundle:
            assert "data.json" in bundle.namelist()
            assert "Musterfrau" in bundle.read("data.json").decode()
        answered = client.get(f"{BASE}/requests/{request_id}").json()
        assert (answered["status"], answered["outcome"]) == ("completed", "export released")
        assert "Download export" in officer.get(f"/console/requests/{request_id}").text

    def test_a_deadline_is_extended_once_and_a_request_rejected(
        self, officer: TestClient, client: TestClient, customer_id: str
    ) -> None:
        request_id = _opened(client, customer_id, "access")["id"]
        url = f"/console/requests/{request_id}"
        before = client.get(f"{BASE}/requests/{request_id}").json()["deadline"]
        extended = _post(officer, f"{url}/extend", months="2", reason="Many systems must be searched.")
        assert extended.status_code == 303
        after = client.get(f"{BASE}/requests/{request_id}").json()
        assert after["extended"]
        assert after["deadline"] > before
        assert "Extend once" not in officer.get(url).text
        rejected = _post(officer, f"{url}/reject", reason="The requester could not be identified.")
        assert rejected.status_code == 303
        assert client.get(f"{BASE}/requests/{request_id}").json()["status"] == "rejected"

    def test_an_erasure_completed_at_the_console_shows_its_certificate(
        self, officer: TestClient, client: TestClient, customer_id: str
    ) -> None:
        request_id = _opened(client, customer_id, "erasure")["id"]
        url = f"/console/requests/{request_id}"
        assert _post(officer, f"{url}/verify", method="known-contact").status_code == 303
        unconfirmed = _post(officer, f"{url}/complete", confirm="erase")
        assert unconfirmed.status_code == 422
        assert "nothing was erased" in unconfirmed.text
        assert client.get(f"{BASE}/customers/{customer_id}").status_code == 200
        erased = _post(officer, f"{url}/complete", confirm="ERASE")
        assert erased.status_code == 303, erased.text
        page = officer.get(erased.headers["location"])
        certificate = client.get(f"{BASE}/requests/{request_id}").json()["certificate"]
        assert certificate
        assert f'<code id="certificate-jws">{certificate}</code>' in page.text
        assert "data key (shredded)" in page.text
        part = certificate.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        kept = _section(page.text, "certificate-kept")
        assert claims["kept"]
        for item in claims["kept"]:
            assert html.escape(item["what"]) in kept
            assert html.escape(item["why"]) in kept
        erased_cells = _section(page.text, "certificate-erased")
        assert all(html.escape(", ".join(what)) in erased_cells for what in claims["erased"].values())
        assert f'href="{BASE}/requests/certificate-key"' in page.text
        assert client.get(f"{BASE}/requests/certificate-key").json()["keys"][0]["kty"] == "OKP"
        assert client.get(f"{BASE}/customers/{customer_id}").status_code in (404, 410)

    def test_a_customer_page_links_to_a_new_request_and_a_bad_intake_is_explained(
        self, officer: TestClient, customer_id: str
    ) -> None:
        detail = officer.get(f"/console/customers/{customer_id}")
        assert f'href="/console/requests/new?customer={customer_id}"' in detail.text
        bad = _post(officer, "/console/requests/new", customer_id=customer_id, right="rectification",
                    language="de", field="email", value="not-an-email")  # fmt: skip
        assert bad.status_code == 422
        assert 'id="value-error"' in bad.text
        assert 'value="not-an-email"' in bad.text
        unknown = _post(officer, "/console/requests/new", customer_id="no-such-customer", right="access")
        assert unknown.status_code == 404
        assert "no-such-customer" in unknown.text

    def test_a_support_agent_is_refused(self, agent: TestClient, client: TestClient, customer_id: str) -> None:
        request_id = _opened(client, customer_id, "access")["id"]
        assert agent.get("/console/requests").status_code == 403
        assert agent.get(f"/console/requests/{request_id}").status_code == 403
        assert agent.get("/console/retention").status_code == 403
        assert agent.get("/console/retention/backups").status_code == 403
        assert 'href="/console/requests/new' not in agent.get(f"/console/customers/{customer_id}").text


class TestRetention:
    def test_a_policy_is_set_and_removed_through_the_forms(self, officer: TestClient, client: TestClient) -> None:
        duty = {"category": "financial", "days": "3650", "anchor": "contract_end", "action": "delete",
                "legal_duty": "AO §147 (10 years)"}  # fmt: skip
        saved = _post(officer, "/console/retention/policies", **duty)
        assert saved.status_code == 303
        assert client.get(f"{BASE}/retention").json()["policies"] == [
            {"category": "financial", "days": 3650, "anchor": "contract_end", "action": "delete",
             "legal_duty": "AO §147 (10 years)"}
        ]  # fmt: skip
        row = _row(officer.get("/console/retention").text, 'data-category="financial"')
        assert "3650 days" in row
        assert "AO §147 (10 years)" in row
        bad = _post(officer, "/console/retention/policies", **(duty | {"days": "0"}))
        assert bad.status_code == 422
        assert "days" in bad.text
        removed = _post(officer, "/console/retention/policies/financial/remove")
        assert removed.status_code == 303
        assert client.get(f"{BASE}/retention").json()["policies"] == []

    def test_a_hold_is_added_and_lifted_through_the_forms(
        self, officer: TestClient, client: TestClient, customer_id: str
    ) -> None:
        added = _post(officer, "/console/retention/holds", customer_id=customer_id, hold_category="",
                      reason="Case 2024-17")  # fmt: skip
        assert added.status_code == 303
        (hold,) = client.get(f"{BASE}/retention").json()["holds"]
        assert (hold["customer_id"], hold["category"], hold["reason"]) == (customer_id, None, "Case 2024-17")
        page = officer.get(added.headers["location"])
        assert "The legal hold was added" in page.text
        assert customer_id in _row(page.text, f'data-hold="{hold["id"]}"')
        nothing = _post(officer, "/console/retention/holds", customer_id="", hold_category="", reason="Case 9")
        assert nothing.status_code == 422
        lifted = _post(officer, f"/console/retention/holds/{hold['id']}/lift")
        assert lifted.status_code == 303
        assert client.get(f"{BASE}/retention").json()["holds"] == []

    def test_a_contract_end_counts_towards_the_purge(
        self, officer: TestClient, client: TestClient, customer_id: str
    ) -> None:
        policy = {"days": 30, "anchor": "contract_end", "action": "delete"}
        assert client.put(f"{BASE}/retention/policies/contact", json=policy).status_code == 200
        assert "Nothing is due." in officer.get("/console/retention/purge").text
        ended = (now() - timedelta(days=60)).date().isoformat()
        recorded = _post(officer, "/console/retention/contract-end", contract_customer_id=customer_id, ended_on=ended)
        assert recorded.status_code == 303
        report = client.get(f"{BASE}/retention/purge").json()
        assert (report["examined"], report["would_clear"], report["first"]) == (1, 1, [customer_id])
        page = officer.get("/console/retention/purge")
        assert [f"<td>{key}</td><td>{count}</td>" in page.text for key, count in report["by_category"].items()] == [
            True
        ]
        assert customer_id in page.text
        missing = _post(officer, "/console/retention/contract-end", contract_customer_id="nobody", ended_on=ended)
        assert missing.status_code == 404

    def test_backups_are_listed_with_their_manifests_and_commands(
        self, officer: TestClient, container: Container, customer_id: str
    ) -> None:
        del customer_id
        assert "No backups in this folder yet" in officer.get("/console/retention/backups").text
        created = backups.create(container.settings)
        page = officer.get("/console/retention/backups")
        assert created.manifest.backup_id in page.text
        assert f"obhut backup verify {created.path}" in page.text
        for entry in created.manifest.databases:
            assert entry.sha256 in page.text
        manifest = json.loads((created.path / "manifest.json").read_text())
        assert manifest["wrapped_key"] not in page.text
        assert "restore" in page.text
        assert 'action="/console/retention/backups' not in page.text  # nothing to restore from the browser
