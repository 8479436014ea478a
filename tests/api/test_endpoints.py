"""The customer API end to end, on SQLite and PostgreSQL: values, lookups, problem details, atomicity,
authentication and the key lifecycle as a client sees it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from obhut.access import service as access
from obhut.container import Container
from obhut.customers.models import Customer
from obhut.kit.db import unit_of_work
from obhut.vault.models import DataKey
from tests.conftest import WORKSPACE, jane

CUSTOMERS = f"/api/v1/workspaces/{WORKSPACE}/customers"
LOOKUP = f"{CUSTOMERS}/lookup"
CARD_NUMBER = "4111111111111111"
PROBLEM = "application/problem+json"
INVALID = {
    "email": "jane@@example.com",
    "phone": "+49 12",
    "iban": "DE00 3704 0044 0532 0130 00",
    "birth_date": "2999-01-01",
    "card_number": "4111 1111 1111 1112",
}


@pytest.fixture
def client(client: TestClient) -> TestClient:
    """The owner's bootstrap token, reading for a stated purpose: every field revealed (policies and masks
    have their own tests in tests/access)."""
    client.params = httpx2.QueryParams(purpose="support")
    return client


def _create(client: TestClient, **overrides: object) -> dict[str, Any]:
    response = client.post(CUSTOMERS, json=jane(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _problem(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://obhut.example.com/problems/")
    assert body["title"]
    assert body["detail"]
    return body


def _rows(container: Container) -> tuple[int, int]:
    with unit_of_work(container.sessions) as session:
        customers = session.scalar(select(func.count()).select_from(Customer))
        data_keys = session.scalar(select(func.count()).select_from(DataKey))
    return customers or 0, data_keys or 0


class TestCreateReadUpdateDelete:
    def test_create_returns_normalised_values(self, client: TestClient) -> None:
        body = _create(client)
        assert {k: body[k] for k in ("external_ref", "given_name", "family_name", "birth_date", "notes")} == {
            "external_ref": "K-0001",
            "given_name": "Jane",
            "family_name": "Musterfrau",
            "birth_date": "1985-04-12",
            "notes": "Prefers email contact",
        }
        assert body["email"] == "Jane.Musterfrau@example.com"
        assert body["phone"] == "+49301234567"
        assert body["iban"] == "DE89370400440532013000"
        assert body["postal_address"] == {
            "line1": "Beispielweg 1",
            "line2": None,
            "postal_code": "10115",
            "city": "Berlin",
            "country": "DE",
        }
        assert body["created_at"] == body["updated_at"]

    def test_the_card_is_kept_only_as_token_brand_and_last_four(self, client: TestClient) -> None:
        created = client.post(CUSTOMERS, json=jane())
        card = created.json()["card"]
        assert set(card) == {"token", "brand", "last4"}
        assert (card["brand"], card["last4"]) == ("visa", "1111")
        assert card["token"].startswith("tok_")
        read = client.get(f"{CUSTOMERS}/{created.json()['id']}")
        for text in (created.text, read.text):
            assert CARD_NUMBER not in text
            assert "4111 1111 1111 1111" not in text
        assert read.json()["card"] == card

    def test_read_returns_what_was_created(self, client: TestClient) -> None:
        created = _create(client)
        read = client.get(f"{CUSTOMERS}/{created['id']}")
        assert read.status_code == 200
        assert read.json() == created

    def test_patch_sets_given_fields_clears_nulls_and_keeps_absent_ones(self, client: TestClient) -> None:
        created = _create(client)
        response = client.patch(
            f"{CUSTOMERS}/{created['id']}", json={"given_name": "Janet", "notes": None, "postal_address": None}
        )
        assert response.status_code == 200, response.text
        updated = response.json()
        assert (updated["given_name"], updated["notes"], updated["postal_address"]) == ("Janet", None, None)
        unchanged = ("family_name", "email", "phone", "iban", "card", "birth_date", "external_ref", "created_at")
        assert {k: updated[k] for k in unchanged} == {k: created[k] for k in unchanged}
        assert updated["updated_at"] > created["updated_at"]
        assert client.get(f"{CUSTOMERS}/{created['id']}").json() == updated

    def test_a_cleared_email_is_no_longer_found(self, client: TestClient) -> None:
        created = _create(client)
        client.patch(f"{CUSTOMERS}/{created['id']}", json={"email": None})
        assert client.post(LOOKUP, json={"email": "jane.musterfrau@example.com"}).json() == {"customers": []}

    def test_patch_may_not_remove_every_identifying_field(self, client: TestClient) -> None:
        created = _create(client)
        response = client.patch(
            f"{CUSTOMERS}/{created['id']}", json={"family_name": None, "email": None, "external_ref": None}
        )
        problem = _problem(response, 422)
        assert [(e["pointer"], e["code"]) for e in problem["errors"]] == [("/family_name", "required")]
        assert client.get(f"{CUSTOMERS}/{created['id']}").json() == created

    def test_delete_removes_the_customer_and_its_data_key(self, client: TestClient, container: Container) -> None:
        created = _create(client)
        assert _rows(container) == (1, 1)
        response = client.delete(f"{CUSTOMERS}/{created['id']}")
        assert (response.status_code, response.content) == (204, b"")
        assert _rows(container) == (0, 0)
        assert _problem(client.get(f"{CUSTOMERS}/{created['id']}"), 404)["detail"].startswith("no customer")


class TestLookup:
    KEYS = (
        {"email": "JANE.MUSTERFRAU@EXAMPLE.COM"},
        {"email": "jane.musterfrau@example.com"},
        {"phone": "030 1234567"},  # national form, read with the workspace's region DE
        {"phone": "+49301234567"},
        {"iban": "DE89 3704 0044 0532 0130 00"},
        {"iban": "de89370400440532013000"},
        {"card_number": "4111-1111-1111-1111"},
        {"card_number": CARD_NUMBER},
        {"external_ref": "K-0001"},
    )

    def test_finds_the_customer_by_each_key(self, client: TestClient) -> None:
        target = _create(client)
        _create(
            client, external_ref="K-0002", email="max@example.com", phone="+49 40 7654321", iban=None, card_number=None
        )
        for key in self.KEYS:
            response = client.post(LOOKUP, json=key)
            assert response.status_code == 200, (key, response.text)
            assert response.json() == {"customers": [target]}, key
            assert CARD_NUMBER not in response.text

    def test_an_unknown_value_finds_nobody(self, client: TestClient) -> None:
        _create(client)
        assert client.post(LOOKUP, json={"email": "nobody@example.com"}).json() == {"customers": []}

    def test_every_customer_sharing_a_value_is_found(self, client: TestClient) -> None:
        ids = {_create(client, external_ref=f"K-{n}")["id"] for n in range(3)}
        found = client.post(LOOKUP, json={"iban": "DE89370400440532013000"}).json()["customers"]
        assert {c["id"] for c in found} == ids

    @pytest.mark.parametrize("body", [{}, {"email": "jane@example.com", "phone": "030 1234567"}])
    def test_needs_exactly_one_key(self, client: TestClient, body: dict[str, str]) -> None:
        problem = _problem(client.post(LOOKUP, json=body), 422)
        assert "exactly one of" in problem["errors"][0]["detail"]

    def test_an_invalid_key_is_a_problem_without_the_value(self, client: TestClient) -> None:
        response = client.post(LOOKUP, json={"iban": "DE00 3704 0044 0532 0130 00"})
        assert [e["pointer"] for e in _problem(response, 422)["errors"]] == ["/iban"]
        assert "3704" not in response.text


class TestProblemDetails:
    def test_every_invalid_field_is_reported_with_a_pointer(self, client: TestClient, container: Container) -> None:
        response = client.post(CUSTOMERS, json=jane(**INVALID))
        problem = _problem(response, 422)
        assert problem["type"] == "https://obhut.example.com/problems/validation"
        assert problem["title"] == "Invalid input"
        details = {e["pointer"]: e["detail"] for e in problem["errors"]}
        card_pointer = "/card_number"  # the name the client sent, not the stored field's name
        assert set(details) == {"/email", "/phone", "/iban", "/birth_date", card_pointer}
        assert details["/birth_date"] == "birth_date must not be in the future"
        assert "check digits do not match" in details["/iban"]
        assert "check digit does not match" in details[card_pointer]
        assert "email address" in details["/email"]
        assert "phone number" in details["/phone"]
        assert all(e["code"] == "invalid" for e in problem["errors"])
        assert _rows(container) == (0, 0)

    def test_rejected_values_never_appear_in_the_body(self, client: TestClient) -> None:
        text = client.post(CUSTOMERS, json=jane(**INVALID)).text
        for value in INVALID.values():
            assert value not in text
            assert value.replace(" ", "") not in text

    def test_an_unknown_field_is_rejected(self, client: TestClient, container: Container) -> None:
        problem = _problem(client.post(CUSTOMERS, json=jane(shoe_size="42")), 422)
        assert [(e["pointer"], e["code"]) for e in problem["errors"]] == [("/shoe_size", "extra_forbidden")]
        assert _rows(container) == (0, 0)

    def test_a_wrong_json_type_is_rejected_without_echoing_the_input(self, client: TestClient) -> None:
        response = client.post(CUSTOMERS, json=jane(given_name=987654321, postal_address="Zwiebelgasse 7"))
        problem = _problem(response, 422)
        assert {e["pointer"] for e in problem["errors"]} == {"/given_name", "/postal_address"}
        assert problem["detail"] == "2 problem(s) in the request"
        assert "987654321" not in response.text
        assert "Zwiebelgasse" not in response.text
        assert "input" not in {key for e in problem["errors"] for key in e}

    def test_a_body_that_is_not_json_is_rejected(self, client: TestClient) -> None:
        response = client.post(CUSTOMERS, content=b"{given_name: Jane", headers={"content-type": "application/json"})
        _problem(response, 422)
        assert "Jane" not in response.text


class TestAllOrNothing:
    def test_a_failed_create_writes_no_customer_and_no_data_key(self, client: TestClient, container: Container) -> None:
        _create(client)
        client.post(CUSTOMERS, json=jane(external_ref="K-0002", email="jane@@example.com"))
        client.post(CUSTOMERS, json=jane(external_ref="K-0003", given_name=5))
        assert _rows(container) == (1, 1)

    def test_a_duplicate_external_ref_is_a_conflict_and_writes_nothing(
        self, client: TestClient, container: Container
    ) -> None:
        first = _create(client)
        problem = _problem(client.post(CUSTOMERS, json=jane(email="other@example.com")), 409)
        assert first["id"] in problem["detail"]
        assert "K-0001" not in problem["detail"]
        assert _rows(container) == (1, 1)

    def test_an_update_to_a_taken_external_ref_is_a_conflict_and_changes_nothing(
        self, client: TestClient, container: Container
    ) -> None:
        _create(client)
        second = _create(client, external_ref="K-0002")
        response = client.patch(f"{CUSTOMERS}/{second['id']}", json={"external_ref": "K-0001", "given_name": "X"})
        _problem(response, 409)
        assert client.get(f"{CUSTOMERS}/{second['id']}").json() == second
        assert _rows(container) == (2, 2)


class TestAuthentication:
    def _assert_refused(self, client: TestClient, authorization: str | None) -> None:
        if authorization is None:
            del client.headers["Authorization"]
        else:
            client.headers["Authorization"] = authorization
        for response in (client.get(f"{CUSTOMERS}/{'0' * 36}"), client.post(CUSTOMERS, json=jane())):
            problem = _problem(response, 401)
            assert problem["type"] == "https://obhut.example.com/problems/unauthenticated"
            assert "Authorization: Bearer" in problem["detail"]

    def test_no_token(self, client: TestClient, container: Container) -> None:
        self._assert_refused(client, None)
        assert _rows(container) == (0, 0)

    def test_wrong_token(self, client: TestClient) -> None:
        for token in ("", "Bearer obhut_adm_not-a-real-token", "Bearer secret", "Basic amFuZTpwdw=="):
            self._assert_refused(client, token)

    def test_revoked_token(self, client: TestClient, container: Container) -> None:
        with unit_of_work(container.sessions) as session:
            issued = access.create_admin_token(session, "short-lived")
        assert (
            client.get(CUSTOMERS.replace("/customers", "/keys"), headers=self._bearer(issued.token)).status_code == 200
        )
        with unit_of_work(container.sessions) as session:
            access.revoke_admin_token(session, issued.token_id)
        self._assert_refused(client, f"Bearer {issued.token}")

    def test_token_of_another_workspace(self, client: TestClient, container: Container) -> None:
        with unit_of_work(container.sessions) as session:
            other = access.create_admin_token(session, "other only", "other")
            own = access.create_admin_token(session, "acme only", WORKSPACE)
        self._assert_refused(client, f"Bearer {other.token}")
        assert client.post(CUSTOMERS, json=jane(), headers=self._bearer(own.token)).status_code == 201

    @staticmethod
    def _bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


class TestNotFoundAndGone:
    def test_unknown_workspace(self, client: TestClient) -> None:
        customer = _create(client)
        elsewhere = "/api/v1/workspaces/nowhere/customers"
        assert "nowhere" in _problem(client.get(f"{elsewhere}/{customer['id']}"), 404)["detail"]
        assert "nowhere" in _problem(client.post(elsewhere, json=jane()), 404)["detail"]
        assert "nowhere" in _problem(client.post(f"{elsewhere}/lookup", json={"external_ref": "K-0001"}), 404)["detail"]

    def test_unknown_customer(self, client: TestClient) -> None:
        _create(client)
        for customer_id in ("01a20820-31cc-781b-a170-b63d3397b604", "not-an-id"):
            for response in (
                client.get(f"{CUSTOMERS}/{customer_id}"),
                client.patch(f"{CUSTOMERS}/{customer_id}", json={"given_name": "X"}),
                client.delete(f"{CUSTOMERS}/{customer_id}"),
                client.post(f"{CUSTOMERS}/{customer_id}/shred"),
            ):
                assert _problem(response, 404)["detail"] == f"no customer {customer_id} in workspace '{WORKSPACE}'"

    def test_a_shredded_customer_is_gone_with_the_date(self, client: TestClient, container: Container) -> None:
        customer = _create(client)
        shredded = client.post(f"{CUSTOMERS}/{customer['id']}/shred")
        assert shredded.status_code == 200
        erased_at = datetime.fromisoformat(shredded.json()["erased_at"])
        for response in (
            client.get(f"{CUSTOMERS}/{customer['id']}"),
            client.patch(f"{CUSTOMERS}/{customer['id']}", json={"given_name": "X"}),
        ):
            problem = _problem(response, 410)
            assert problem["type"] == "https://obhut.example.com/problems/shredded"
            assert f"{erased_at:%Y-%m-%d %H:%M} UTC" in problem["detail"]
        assert client.post(LOOKUP, json={"external_ref": "K-0001"}).json() == {"customers": []}
        assert _rows(container) == (1, 0)


class TestRevokedKey:
    def test_reads_are_locked_until_the_key_is_restored(self, client: TestClient, container: Container) -> None:
        customer = _create(client)
        with unit_of_work(container.sessions) as session:
            revoked_at = container.vault.revoke(session, WORKSPACE)[0].revoked_at
        assert revoked_at is not None
        for response in (
            client.get(f"{CUSTOMERS}/{customer['id']}"),
            client.post(LOOKUP, json={"external_ref": "K-0001"}),
            client.post(CUSTOMERS, json=jane(external_ref="K-0002")),
        ):
            problem = _problem(response, 423)
            assert problem["type"] == "https://obhut.example.com/problems/key-revoked"
            assert "'obhut-acme-v1'" in problem["detail"]
            assert f"revoked on {revoked_at:%Y-%m-%d %H:%M} UTC" in problem["detail"]
        assert _rows(container) == (1, 1)
        keys = client.get(f"/api/v1/workspaces/{WORKSPACE}/keys").json()
        assert [(k["key_ref"], k["revoked_at"] is not None) for k in keys] == [("obhut-acme-v1", True)]
        with unit_of_work(container.sessions) as session:
            container.vault.restore(session, WORKSPACE)
        read = client.get(f"{CUSTOMERS}/{customer['id']}")
        assert (read.status_code, read.json()) == (200, customer)


class TestOpenApi:
    def test_lists_the_customer_paths(self, client: TestClient) -> None:
        response = client.get("/api/v1/openapi.json")
        assert response.status_code == 200
        spec = response.json()
        paths = spec["paths"]
        base = "/api/v1/workspaces/{workspace_id}/customers"
        assert set(paths[base]) == {"get", "post"}
        assert set(paths[f"{base}/{{customer_id}}"]) == {"get", "patch", "delete"}
        assert set(paths[f"{base}/lookup"]) == {"post"}
        assert set(paths[f"{base}/{{customer_id}}/shred"]) == {"post"}
        assert spec["info"]["title"] == "Obhut"


class TestWorkspaceCreation:
    def test_needs_a_token_for_every_workspace(self, client: TestClient, container: Container) -> None:
        with unit_of_work(container.sessions) as session:
            limited = access.create_admin_token(session, "acme only", WORKSPACE)
        refused = client.post(
            "/api/v1/workspaces",
            json={"workspace_id": "newco"},
            headers={"Authorization": f"Bearer {limited.token}"},
        )
        assert refused.status_code == 403
        assert refused.json()["type"].endswith("/forbidden")
        created = client.post("/api/v1/workspaces", json={"workspace_id": "newco"})
        assert created.status_code == 201
        assert created.json()["workspace_id"] == "newco"
