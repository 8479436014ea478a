"""The key endpoints: a rotation started over HTTP and finished by the background job, its progress, and
revocation behind a typed confirmation; each for key managers only, each in the access log."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from obhut.container import Container
from obhut.vault import tasks
from tests.access.staff import bearer, signed_in_with_mfa
from tests.conftest import WORKSPACE, jane

pytestmark = pytest.mark.usefixtures("backend")
BASE = f"/api/v1/workspaces/{WORKSPACE}"


def _customers(client: TestClient, count: int, first: int = 0) -> list[str]:
    ids = []
    for n in range(first, first + count):
        created = client.post(f"{BASE}/customers", json=jane(external_ref=f"K-{n}", email=f"k{n}@example.com"))
        assert created.status_code == 201, created.text
        ids.append(str(created.json()["id"]))
    return ids


def _entries(client: TestClient, verb: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get(f"{BASE}/audit/entries", params={"action": verb}).json()
    return found


def _states(client: TestClient) -> dict[int, str]:
    return {v["version"]: v["state"] for v in client.get(f"{BASE}/keys").json()}


def test_a_rotation_starts_and_the_background_job_finishes_it(client: TestClient, container: Container) -> None:
    ids = _customers(client, 3)
    started = client.post(f"{BASE}/keys/rotate")
    assert started.status_code == 202, started.text
    assert started.json() == {"rotating": True, "from_versions": [1], "to_version": 2, "done": 0, "total": 3}
    assert _states(client) == {1: "retiring", 2: "active"}
    again = client.post(f"{BASE}/keys/rotate")
    assert again.status_code == 409
    assert "under way" in again.json()["detail"]
    newcomer = _customers(client, 1, first=3)[0]  # wrapped under the new version at once
    assert client.get(f"{BASE}/keys/rotation").json()["done"] == 1

    assert tasks.resume_rotations(container.vault, container.sessions) == 3
    progress = client.get(f"{BASE}/keys/rotation").json()
    assert progress == {"rotating": False, "from_versions": [], "to_version": 2, "done": 4, "total": 4}
    assert _states(client) == {1: "retired", 2: "active"}
    for customer_id in [*ids, newcomer]:
        read = client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "support"})
        assert read.json()["family_name"] == "Musterfrau"
    assert [e["role"] for e in _entries(client, "api:key:rotate")] == ["owner"]


def test_revocation_needs_the_workspace_id_typed_out(client: TestClient) -> None:
    (customer_id,) = _customers(client, 1)
    for body in ({}, {"confirm": "yes"}, {"confirm": WORKSPACE.upper()}):
        refused = client.post(f"{BASE}/keys/revoke", json=body)
        assert refused.status_code == 422, body
        assert refused.headers["content-type"] == "application/problem+json"
        assert [e["pointer"] for e in refused.json()["errors"]] == ["/confirm"]
    assert all(v["revoked_at"] is None for v in client.get(f"{BASE}/keys").json())
    assert _entries(client, "api:key:revoke") == []

    revoked = client.post(f"{BASE}/keys/revoke", json={"confirm": WORKSPACE})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json() == {"revoked": [f"obhut-{WORKSPACE}-v1"]}
    unreadable = client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "support"})
    assert unreadable.status_code == 423
    assert unreadable.json()["type"].endswith("/key-revoked")
    assert "Musterfrau" not in unreadable.text
    assert client.post(f"{BASE}/keys/revoke", json={"confirm": WORKSPACE}).status_code == 409
    assert [e["role"] for e in _entries(client, "api:key:revoke")] == ["owner"]  # the refused attempts: none


def test_only_key_managers_may(client: TestClient, container: Container) -> None:
    token = signed_in_with_mfa(client, container, "agent", "support_agent")
    headers = bearer(token)
    for method, path in (("GET", "/keys"), ("GET", "/keys/rotation"), ("POST", "/keys/rotate")):
        answer = client.request(method, BASE + path, headers=headers)
        assert answer.status_code == 403, path
        assert "keys:manage" in answer.json()["detail"]
    refused = client.post(f"{BASE}/keys/revoke", json={"confirm": WORKSPACE}, headers=headers)
    assert refused.status_code == 403
    assert _states(client) == {1: "active"}
    assert all(v["revoked_at"] is None for v in client.get(f"{BASE}/keys").json())
