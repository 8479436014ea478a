from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from obhut.access import service as access
from obhut.container import Container
from obhut.customers.models import Customer
from obhut.kit.db import unit_of_work
from obhut.vault.models import DataKey
from tests.conftest import WORKSPACE, jane

BASE = f"/api/v1/workspaces/{WORKSPACE}/customers"


def _counts(container: Container) -> tuple[int, int]:
    with unit_of_work(container.sessions) as session:
        return (
            session.scalar(select(func.count()).select_from(Customer)) or 0,
            session.scalar(select(func.count()).select_from(DataKey)) or 0,
        )


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    return body


class TestCustomerLifecycle:
    def test_create_read_update_delete(self, client: TestClient) -> None:
        created = client.post(BASE, json=jane())
        assert created.status_code == 201
        body = created.json()
        assert body["email"] == "Jane.Musterfrau@example.com"
        assert body["phone"] == "+49301234567"
        assert body["iban"] == "DE89370400440532013000"
        assert body["card"] == {"token": body["card"]["token"], "brand": "visa", "last4": "1111"}
        assert body["card"]["token"].startswith("tok_")
        assert "4111111111111111" not in created.text
        assert "4111 1111" not in created.text
        url = f"{BASE}/{body['id']}"
        assert client.get(url).json() == body

        patched = client.patch(url, json={"notes": None, "given_name": "Janina"}).json()
        assert (patched["notes"], patched["given_name"], patched["family_name"]) == (None, "Janina", "Musterfrau")

        assert client.delete(url).status_code == 204
        _problem(client.get(url), 404)

    def test_shredded_customer_is_gone_with_its_date(self, client: TestClient) -> None:
        customer_id = client.post(BASE, json=jane()).json()["id"]
        assert client.post(f"{BASE}/{customer_id}/shred").status_code == 200
        body = _problem(client.get(f"{BASE}/{customer_id}"), 410)
        assert "was destroyed on 20" in body["detail"]


class TestLookup:
    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("email", "JANE.MUSTERFRAU@EXAMPLE.COM"),
            ("phone", "030 1234567"),
            ("iban", "de89 3704 0044 0532 0130 00"),
            ("card_number", "4111-1111-1111-1111"),
            ("external_ref", "K-0001"),
        ],
    )
    def test_finds_the_customer(self, client: TestClient, key: str, value: str) -> None:
        wanted = client.post(BASE, json=jane()).json()["id"]
        client.post(
            BASE,
            json=jane(
                external_ref="K-0002",
                email="other@example.com",
                phone="+49 40 7654321",
                iban="DE02 1203 0000 0000 2020 51",
                card_number="5555 5555 5555 4444",
            ),
        )
        found = client.post(f"{BASE}/lookup", json={key: value})
        assert [c["id"] for c in found.json()["customers"]] == [wanted]

    @pytest.mark.parametrize("body", [{}, {"email": "a@example.com", "phone": "+49 30 1234567"}])
    def test_needs_exactly_one_key(self, client: TestClient, body: dict[str, str]) -> None:
        _problem(client.post(f"{BASE}/lookup", json=body), 422)


class TestProblems:
    def test_every_bad_field_is_reported_without_its_value(self, client: TestClient, container: Container) -> None:
        bad = {
            "email": "jane@@example",
            "phone": "+49 12",
            "iban": "DE89 3704 0044 0532 0130 01",
            "birth_date": "2999-01-01",
            "card_number": "4111 1111 1111 1112",
        }
        body = _problem(client.post(BASE, json=jane(**bad)), 422)
        assert {e["pointer"] for e in body["errors"]} == {"/email", "/phone", "/iban", "/birth_date", "/card"}
        for value in bad.values():
            assert value not in str(body)
        assert _counts(container) == (0, 0)

    @pytest.mark.parametrize("body", [{"given_name": 5, "family_name": "X"}, {"family_name": "X", "shoe_size": "44"}])
    def test_wrong_shapes_are_refused_without_echo(self, client: TestClient, body: dict[str, Any]) -> None:
        problem = _problem(client.post(BASE, json=body), 422)
        assert "44" not in str(problem["errors"])
        assert "input" not in problem["errors"][0]

    def test_duplicate_reference_conflicts_and_writes_nothing(self, client: TestClient, container: Container) -> None:
        client.post(BASE, json=jane())
        _problem(client.post(BASE, json=jane(email="someone@example.com")), 409)
        assert _counts(container) == (1, 1)

    def test_unknown_workspace_and_customer(self, client: TestClient) -> None:
        _problem(client.get("/api/v1/workspaces/nowhere/customers/01a20812-2ed4-7fe4-b508-520a1280a843"), 404)
        _problem(client.get(f"{BASE}/01a20812-2ed4-7fe4-b508-520a1280a843"), 404)
        _problem(client.get(f"{BASE}/not-an-id"), 404)


class TestAuthentication:
    def test_missing_wrong_revoked_and_foreign_tokens(self, client: TestClient, container: Container) -> None:
        url = f"{BASE}/01a20812-2ed4-7fe4-b508-520a1280a843"
        assert _problem(client.get(url, headers={"Authorization": ""}), 401)["detail"].startswith("a valid admin")
        _problem(client.get(url, headers={"Authorization": "Bearer obhut_adm_wrong"}), 401)
        with unit_of_work(container.sessions) as session:
            revoked = access.create_admin_token(session, "old")
            foreign = access.create_admin_token(session, "other", "other-ws")
        with unit_of_work(container.sessions) as session:
            access.revoke_admin_token(session, revoked.token_id)
        _problem(client.get(url, headers={"Authorization": f"Bearer {revoked.token}"}), 401)
        _problem(client.get(url, headers={"Authorization": f"Bearer {foreign.token}"}), 401)


class TestKeys:
    def test_revoked_key_is_named_then_restored(self, client: TestClient, container: Container) -> None:
        customer_id = client.post(BASE, json=jane()).json()["id"]
        with unit_of_work(container.sessions) as session:
            container.vault.revoke(session, WORKSPACE)
        body = _problem(client.get(f"{BASE}/{customer_id}"), 423)
        assert "key 'obhut-acme-v1'" in body["detail"]
        assert "revoked on 20" in body["detail"]
        assert client.get(f"/api/v1/workspaces/{WORKSPACE}/keys").json()[0]["revoked_at"] is not None
        with unit_of_work(container.sessions) as session:
            container.vault.restore(session, WORKSPACE)
        assert client.get(f"{BASE}/{customer_id}").json()["given_name"] == "Jane"

    def test_openapi_lists_the_customer_paths(self, client: TestClient) -> None:
        paths = client.get("/api/v1/openapi.json").json()["paths"]
        assert {
            "/api/v1/workspaces/{workspace_id}/customers",
            "/api/v1/workspaces/{workspace_id}/customers/lookup",
        } <= set(paths)
