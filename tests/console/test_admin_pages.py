"""The administration pages: keys (rotation and revocation), staff and roles, and the consent catalogue; each
change made through the forms and read back through the API, and each page refused to roles without it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from obhut.api.app import create_app
from obhut.container import Container
from obhut.vault import tasks
from tests.access.staff import PASSWORD
from tests.conftest import WORKSPACE, jane
from tests.console.conftest import csrf, enrolled, next_code, sign_in

pytestmark = pytest.mark.usefixtures("backend")
BASE = f"/api/v1/workspaces/{WORKSPACE}"
PURPOSE = {
    "title_en": "Loyalty programme",
    "title_de": "Treueprogramm",
    "description_en": "Points for every purchase",
    "description_de": "Punkte für jeden Einkauf",
    "legal_basis": "consent",
    "categories": ["contact", "identity"],
    "recipients": "Points partner (processor)",
    "retention": "until withdrawn",
}


@pytest.fixture
def admin(browser: TestClient, container: Container) -> TestClient:
    """An administrator (keys, staff, policy) signed in with password and TOTP code."""
    sign_in(browser, "boss", next_code(enrolled(browser, container, "boss", "admin")))
    return browser


def _post(page: TestClient, path: str, **form: Any) -> Any:
    return page.post(path, data={"csrf": csrf(page), **form}, follow_redirects=False)


def _customers(client: TestClient, count: int) -> list[str]:
    made = [
        client.post(f"{BASE}/customers", json=jane(external_ref=f"K-{n}", email=f"k{n}@example.com"))
        for n in range(count)
    ]
    assert all(m.status_code == 201 for m in made)
    return [str(m.json()["id"]) for m in made]


def _progress(html: str) -> tuple[str, str]:
    found = re.search(r'<progress id="rotation-progress" max="(\d+)" value="(\d+)"', html)
    assert found, "the page shows the rotation's progress bar"
    return found.group(2), found.group(1)


def test_rotation_through_the_console(admin: TestClient, client: TestClient, container: Container) -> None:
    _customers(client, 2)
    page = admin.get("/console/keys")
    assert page.status_code == 200
    assert "obhut-acme-v1" in page.text
    assert _progress(page.text) == ("2", "2")
    started = _post(admin, "/console/keys/rotate")
    assert (started.status_code, started.headers["location"]) == (303, "/console/keys?done=rotated")
    assert {v["version"]: v["state"] for v in client.get(f"{BASE}/keys").json()} == {1: "retiring", 2: "active"}
    page = admin.get("/console/keys?done=rotated")
    assert "Rotation started" in page.text
    assert "Rotating from v1 to v2" in page.text
    assert _progress(page.text) == ("0", "2")
    assert 'href="/console/keys">Refresh' in page.text
    again = _post(admin, "/console/keys/rotate")  # the API refuses a second one meanwhile; the page says why
    assert again.status_code == 409
    assert "under way" in again.text

    tasks.resume_rotations(container.vault, container.sessions)  # the background job's turn
    page = admin.get("/console/keys")
    assert _progress(page.text) == ("2", "2")
    assert "Rotate the keys" in page.text
    assert [e["role"] for e in client.get(f"{BASE}/audit/entries", params={"action": "api:key:rotate"}).json()] == [
        "admin"
    ]


def test_revocation_needs_the_workspace_id_typed_out(admin: TestClient, client: TestClient) -> None:
    (customer_id,) = _customers(client, 1)
    page = admin.get("/console/keys")
    assert f'data-confirm="{WORKSPACE}"' in page.text
    assert "no personal data of this workspace can be read or written" in page.text
    for typed in ("", "ACME", "yes"):
        refused = _post(admin, "/console/keys/revoke", confirm=typed)
        assert refused.status_code == 422
        assert "type the workspace id exactly" in refused.text
    assert all(v["revoked_at"] is None for v in client.get(f"{BASE}/keys").json())
    assert client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "support"}).status_code == 200

    done = _post(admin, "/console/keys/revoke", confirm=WORKSPACE)
    assert (done.status_code, done.headers["location"]) == (303, "/console/keys?done=revoked")
    read = client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "support"})
    assert read.status_code == 423  # the data is unreadable now
    assert "Musterfrau" not in read.text
    page = admin.get("/console/keys?done=revoked")
    assert "obhut keys restore" in page.text
    assert 'action="/console/keys/revoke"' not in page.text


def test_add_a_staff_member_change_and_sign_in_as_them(
    admin: TestClient, client: TestClient, container: Container
) -> None:
    page = admin.get("/console/staff")
    assert "boss" in page.text
    short = _post(admin, "/console/staff/new", username="nina", display_name="Nina N.", role="analyst", password="x")
    assert short.status_code == 422
    assert 'value="Nina N."' in short.text  # what was typed stays, the password does not
    added = _post(
        admin, "/console/staff/new", username="nina", display_name="Nina N.", role="analyst", password=PASSWORD
    )
    assert (added.status_code, added.headers["location"]) == (303, "/console/staff?done=added")
    nina = _member(client, "nina")
    assert (nina["display_name"], nina["role"], nina["totp"], nina["disabled_at"]) == (
        "Nina N.",
        "analyst",
        False,
        None,
    )
    assert _post(admin, f"/console/staff/{nina['staff_id']}", role="auditor").status_code == 303
    assert _member(client, "nina")["role"] == "auditor"

    with TestClient(create_app(container=container), base_url="https://testserver") as other:
        sign_in(other, "nina")  # auditors need no second factor
        assert "auditor · acme" in other.get("/console").text
        assert other.get("/console/staff").status_code == 403
        assert _post(admin, f"/console/staff/{nina['staff_id']}", disabled="true").status_code == 303
        assert _member(client, "nina")["disabled_at"] is not None
        assert other.get("/console", follow_redirects=False).headers["location"].startswith("/console/sign-in")
    assert "disabled" in admin.get("/console/staff").text


def _member(client: TestClient, username: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in client.get(f"{BASE}/staff").json() if s["username"] == username)
    return found


def test_roles_and_purposes_with_the_policy_in_force(admin: TestClient, client: TestClient) -> None:
    page = admin.get("/console/staff")
    assert re.search(r"<td>support agent</td><td>category identity</td><td>Customer support</td>", page.text)
    assert "<code>keys:manage</code>" in page.text
    bad = _post(admin, "/console/staff/roles/new", name="Bad Name", title="Helpers", permissions=["oversight:read"])
    assert bad.status_code == 422
    assert 'value="Helpers"' in bad.text
    assert re.search(r'value="oversight:read" checked', bad.text)
    made = _post(
        admin, "/console/staff/roles/new", name="dpo_helper", title="Helpers",
        permissions=["customers:read", "oversight:read"],
    )  # fmt: skip
    assert (made.status_code, made.headers["location"]) == (303, "/console/staff?done=role")
    assert _post(admin, "/console/staff/purposes/new", key="claims", title="Insurance claims").status_code == 303
    policy = client.get(f"{BASE}/policy").json()
    assert policy["roles"]["dpo_helper"] == ["customers:read", "oversight:read"]
    assert policy["purposes"]["claims"] == "Insurance claims"
    assert "Insurance claims" in admin.get("/console/staff").text


def test_define_a_purpose_and_publish_its_notice(admin: TestClient, client: TestClient) -> None:
    assert "No purposes defined yet" in admin.get("/console/consent").text
    form = {**PURPOSE, "key": "loyalty"}
    invalid = _post(admin, "/console/consent/new", **{**form, "key": "Loyalty!"})
    assert invalid.status_code == 422
    assert 'value="Treueprogramm"' in invalid.text
    defined = _post(admin, "/console/consent/new", **form)
    assert (defined.status_code, defined.headers["location"]) == (303, "/console/consent/loyalty?done=defined")
    edited = _post(
        admin, "/console/consent/loyalty", **{**PURPOSE, "title_en": "Loyalty points", "sale_or_sharing": "1"}
    )
    assert edited.status_code == 303
    page = admin.get("/console/consent/loyalty")
    assert "makes every earlier consent to this purpose lapse" in page.text
    notice = {"version": "1.0", "language": "en", "text": "We give you points for purchases."}
    assert _post(admin, "/console/consent/loyalty/notices", **notice).status_code == 303
    again = _post(admin, "/console/consent/loyalty/notices", **notice)
    assert again.status_code == 409
    assert "published already" in again.text
    assert _post(admin, "/console/consent/loyalty/notices", **{**notice, "version": "one"}).status_code == 422

    (loyalty,) = client.get(f"{BASE}/consent/purposes").json()
    expected = {**PURPOSE, "key": "loyalty", "title_en": "Loyalty points", "sale_or_sharing": True}
    assert {k: loyalty[k] for k in expected} == expected
    assert [(n["version"], n["language"]) for n in loyalty["notices"]] == [("1.0", "en")]
    listed = admin.get("/console/consent").text
    assert "Loyalty points / Treueprogramm" in listed
    assert "1.0 (en)" in listed
    assert admin.get("/console/consent/unknown").status_code == 404


def test_a_support_agent_is_refused(agent: TestClient) -> None:
    for path in ("/console/keys", "/console/staff", "/console/consent"):
        page = agent.get(path)
        assert page.status_code == 403, path
        assert "lacks the permission" in page.text
    assert 'href="/console/keys"' not in agent.get("/console").text
