"""Staff access through the API, on SQLite and PostgreSQL: sign-in, throttling, MFA, tokens, policies,
masking per role and purpose, and break-glass."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from obhut.access.models import ApiToken, StaffSession
from obhut.container import Container
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from tests.access.staff import AUTH, PASSWORD, add_staff, bearer, enrol_totp, login, signed_in_with_mfa
from tests.conftest import WORKSPACE, jane

BASE = f"/api/v1/workspaces/{WORKSPACE}"
CUSTOMERS = f"{BASE}/customers"
IBAN = "DE89370400440532013000"


def _customer(client: TestClient) -> str:
    response = client.post(CUSTOMERS, json=jane(iban=IBAN))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _read(client: TestClient, token: str, customer_id: str, **params: str) -> Any:
    return client.get(f"{CUSTOMERS}/{customer_id}", params=params, headers=bearer(token))


class TestSignIn:
    def test_wrong_password_and_unknown_account_answer_alike(self, client: TestClient, container: Container) -> None:
        add_staff(container, "agent@example.com", "support_agent")
        wrong = client.post(f"{AUTH}/login", json={"username": "agent@example.com", "password": "not it at all"})
        unknown = client.post(f"{AUTH}/login", json={"username": "nobody@example.com", "password": PASSWORD})
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json()["detail"] == unknown.json()["detail"]

    def test_repeated_failures_lock_the_account_name_whether_it_exists_or_not(
        self, client: TestClient, container: Container
    ) -> None:
        add_staff(container, "agent@example.com", "support_agent")
        for name in ("agent@example.com", "nobody@example.com"):
            for _ in range(container.settings.login_max_failures):
                client.post(f"{AUTH}/login", json={"username": name, "password": "wrong password!"})
            locked = client.post(f"{AUTH}/login", json={"username": name, "password": PASSWORD})
            assert locked.status_code == 429
            assert "too many failed sign-ins" in locked.json()["detail"]
        other = add_staff(container, "other@example.com", "analyst")
        assert other
        assert login(client, "other@example.com")["token"].startswith("obhut_ses_")

    def test_logout_and_expiry_end_a_session(self, client: TestClient, container: Container) -> None:
        add_staff(container, "auditor@example.com", "auditor")
        token = login(client, "auditor@example.com")["token"]
        me = client.get(f"{AUTH}/me", headers=bearer(token)).json()
        assert (me["role"], me["amr"]) == ("auditor", ["pwd"])
        assert client.post(f"{AUTH}/logout", headers=bearer(token)).status_code == 204
        assert client.get(f"{AUTH}/me", headers=bearer(token)).status_code == 401
        token = login(client, "auditor@example.com")["token"]
        with unit_of_work(container.sessions) as session:
            session.execute(update(StaffSession).values(expires_at=now() - timedelta(seconds=1)))
        assert client.get(f"{AUTH}/me", headers=bearer(token)).status_code == 401


class TestSecondFactor:
    def test_a_role_that_reveals_financial_data_must_verify_a_second_factor(
        self, client: TestClient, container: Container
    ) -> None:
        customer_id = _customer(client)
        add_staff(container, "agent@example.com", "support_agent")
        session = login(client, "agent@example.com")
        assert session["mfa_required"] is True
        refused = _read(client, session["token"], customer_id)
        assert (refused.status_code, refused.json()["type"].rsplit("/", 1)[1]) == (403, "mfa-required")
        totp, recovery = enrol_totp(client, session["token"])
        assert _read(client, session["token"], customer_id).status_code == 200
        assert len(recovery) == 10

        code = totp.now()
        again = client.post(
            f"{AUTH}/login", json={"username": "agent@example.com", "password": PASSWORD, "totp_code": code}
        )
        assert again.status_code == 401  # the confirmation already used this step's code
        first = login(client, "agent@example.com", recovery_code=recovery[0])
        assert first["amr"] == ["pwd", "rec"]
        reused = client.post(
            f"{AUTH}/login", json={"username": "agent@example.com", "password": PASSWORD, "recovery_code": recovery[0]}
        )
        assert reused.status_code == 401

    def test_step_up_with_a_totp_code(self, client: TestClient, container: Container) -> None:
        add_staff(container, "agent@example.com", "support_agent")
        first = login(client, "agent@example.com")["token"]
        totp, _ = enrol_totp(client, first)
        second = login(client, "agent@example.com")["token"]
        assert client.get(f"{AUTH}/me", headers=bearer(second)).json()["mfa_required"] is True
        wrong = "000000" if totp.now() != "000000" else "111111"
        assert client.post(f"{AUTH}/mfa/totp", json={"code": wrong}, headers=bearer(second)).status_code == 401
        code = totp.at(now() + timedelta(seconds=30))  # the next step: this one's code was used to confirm
        assert client.post(f"{AUTH}/mfa/totp", json={"code": code}, headers=bearer(second)).status_code == 204
        assert client.get(f"{AUTH}/me", headers=bearer(second)).json()["amr"] == ["otp", "pwd"]


class TestMasking:
    def test_support_agent_sees_what_the_task_needs(self, client: TestClient, container: Container) -> None:
        customer_id = _customer(client)
        token = signed_in_with_mfa(client, container, "agent@example.com", "support_agent")
        masked = _read(client, token, customer_id).json()
        assert masked["email"] == "J***@example.com"
        assert masked["iban"] == "DE** **** **** **** **30 00"
        assert masked["given_name"] == "J."
        assert set(masked["disclosure"].values()) == {"masked"}
        support = _read(client, token, customer_id, purpose="support", ticket="T-1").json()
        assert support["email"] == "Jane.Musterfrau@example.com"
        assert (support["iban"], support["disclosure"]["iban"]) == ("DE** **** **** **** **30 00", "masked")
        billing = _read(client, token, customer_id, purpose="billing").json()
        assert (billing["iban"], billing["given_name"]) == (IBAN, "J.")
        assert billing["email"] is None
        assert billing["disclosure"]["email"] == "withheld"

    def test_analyst_gets_hashes_and_may_not_search_by_what_it_may_not_see(
        self, client: TestClient, container: Container
    ) -> None:
        customer_id = _customer(client)
        add_staff(container, "analyst@example.com", "analyst")
        token = login(client, "analyst@example.com")["token"]  # the analyst's role reveals nothing: no MFA needed
        seen = _read(client, token, customer_id, purpose="marketing").json()
        assert seen["email"].startswith("hash:")
        assert seen["given_name"] is None
        assert seen["iban"] is None
        refused = client.post(f"{CUSTOMERS}/lookup", json={"iban": IBAN}, headers=bearer(token))
        assert refused.status_code == 403
        denied = client.get(f"{BASE}/audit/entries", params={"action": "api:customer:search"}).json()
        assert [(e["outcome"], e["role"], e["search_kind"]) for e in denied] == [("denied", "analyst", "iban lookup")]
        found = client.post(f"{CUSTOMERS}/lookup", json={"email": "jane.musterfrau@example.com"}, headers=bearer(token))
        assert [c["email"] for c in found.json()["customers"]] == [seen["email"]]

    def test_an_unknown_purpose_is_refused_with_the_known_ones(self, client: TestClient) -> None:
        customer_id = _customer(client)
        problem = client.get(f"{CUSTOMERS}/{customer_id}", params={"purpose": "curiosity"}).json()
        assert problem["status"] == 422
        assert "support" in problem["errors"][0]["detail"]


class TestPolicyChanges:
    RULES: list[dict[str, str]] = [  # noqa: RUF012
        {"role": "owner", "target": "*", "purpose": "*", "effect": "reveal"},
        {"role": "support_agent", "target": "category:contact", "purpose": "*", "effect": "mask"},
    ]

    def test_need_an_admin_with_a_second_factor_and_apply_on_the_next_request(
        self, client: TestClient, container: Container
    ) -> None:
        customer_id = _customer(client)
        add_staff(container, "admin@example.com", "admin")
        password_only = login(client, "admin@example.com")["token"]
        body = {"rules": self.RULES}
        assert client.put(f"{BASE}/policy", json=body, headers=bearer(password_only)).status_code == 403
        enrol_totp(client, password_only)
        agent = signed_in_with_mfa(client, container, "agent@example.com", "support_agent")
        assert _read(client, agent, customer_id, purpose="support").json()["email"] == "Jane.Musterfrau@example.com"
        changed = client.put(f"{BASE}/policy", json=body, headers=bearer(password_only))
        assert changed.status_code == 200, changed.text
        assert (changed.json()["version"], changed.json()["created_by"].startswith("staff:")) == (2, True)
        after = _read(client, agent, customer_id, purpose="support").json()
        assert after["email"] == "J***@example.com"
        assert after["family_name"] is None

    def test_a_bad_policy_is_refused_whole(self, client: TestClient) -> None:
        bad = [*self.RULES, {"role": "ghost", "target": "*", "purpose": "*", "effect": "reveal"}]
        problem = client.put(f"{BASE}/policy", json={"rules": bad}).json()
        assert [e["pointer"] for e in problem["errors"]] == ["/rules/2/role"]
        assert client.get(f"{BASE}/policy").json()["version"] == 1


class TestApiTokens:
    def test_scoped_expiring_revocable_and_shown_once(self, client: TestClient, container: Container) -> None:
        customer_id = _customer(client)
        created = client.post(
            f"{BASE}/tokens", json={"label": "crm sync", "role": "support_agent", "scopes": ["customers:read"]}
        )
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        assert all(t["token"] is None for t in client.get(f"{BASE}/tokens").json())
        assert _read(client, token, customer_id, purpose="support").json()["email"] == "Jane.Musterfrau@example.com"
        write = client.post(CUSTOMERS, json=jane(external_ref="K-2"), headers=bearer(token))
        assert write.status_code == 403
        with unit_of_work(container.sessions) as session:
            session.execute(update(ApiToken).values(expires_at=now() - timedelta(seconds=1)))
        assert _read(client, token, customer_id).status_code == 401
        second = client.post(f"{BASE}/tokens", json={"label": "b", "role": "analyst", "scopes": ["customers:read"]})
        assert client.delete(f"{BASE}/tokens/{second.json()['token_id']}").status_code == 204
        assert _read(client, second.json()["token"], customer_id).status_code == 401

    def test_a_scope_beyond_the_role_is_refused(self, client: TestClient) -> None:
        problem = client.post(f"{BASE}/tokens", json={"label": "x", "role": "analyst", "scopes": ["staff:manage"]})
        assert problem.status_code == 422
        assert problem.json()["errors"][0]["pointer"] == "/scopes/0"


class TestBreakGlass:
    JUSTIFICATION = "Customer on the phone reports fraud; IBAN needed to stop a transfer (case F-17)"

    def test_allowed_for_a_privileged_role_recorded_and_visible_to_the_privacy_officer(
        self, client: TestClient, container: Container
    ) -> None:
        customer_id = _customer(client)
        agent = signed_in_with_mfa(client, container, "agent@example.com", "support_agent")
        url = f"{CUSTOMERS}/{customer_id}/break-glass"
        body = {"purpose": "support", "justification": self.JUSTIFICATION}
        assert client.post(url, json=body, headers=bearer(agent)).status_code == 403
        officer = signed_in_with_mfa(client, container, "dpo@example.com", "privacy_officer")
        revealed = client.post(url, json=body, headers=bearer(officer)).json()
        assert revealed["iban"] == IBAN
        assert set(revealed["disclosure"].values()) == {"revealed"}
        short = client.post(url, json={"purpose": "support", "justification": "because"}, headers=bearer(officer))
        assert short.status_code == 422
        events = client.get(f"{BASE}/break-glass", headers=bearer(officer)).json()
        assert [(e["customer_id"], e["justification"], e["reviewed_at"]) for e in events] == [
            (customer_id, self.JUSTIFICATION, None)
        ]
        assert client.get(f"{BASE}/break-glass", headers=bearer(agent)).status_code == 403


@pytest.mark.parametrize("path", ["/staff", "/tokens", "/break-glass"])
def test_a_support_agent_cannot_administer(client: TestClient, container: Container, path: str) -> None:
    agent = signed_in_with_mfa(client, container, "agent@example.com", "support_agent")
    assert client.get(f"{BASE}{path}", headers=bearer(agent)).status_code == 403


class TestWorkspaceWide:
    def test_failures_from_one_address_lock_it_across_account_names(
        self, client: TestClient, container: Container
    ) -> None:
        add_staff(container, "agent@example.com", "support_agent")
        for number in range(container.settings.address_max_failures):
            wrong = {"username": f"guess{number}@example.com", "password": "wrong password!"}
            assert client.post(f"{AUTH}/login", json=wrong).status_code == 401
        locked = client.post(f"{AUTH}/login", json={"username": "agent@example.com", "password": PASSWORD})
        assert locked.status_code == 429
        assert "too many failed sign-ins" in locked.json()["detail"]

    def test_a_workspace_can_require_a_second_factor_of_every_role(
        self, client: TestClient, container: Container
    ) -> None:
        customer_id = _customer(client)
        add_staff(container, "auditor@example.com", "auditor")
        auditor = login(client, "auditor@example.com")["token"]
        assert _read(client, auditor, customer_id).status_code == 200
        rules = client.get(f"{BASE}/policy").json()["rules"]
        changed = client.put(f"{BASE}/policy", json={"rules": rules, "require_mfa_all": True})
        assert changed.status_code == 200, changed.text
        refused = _read(client, auditor, customer_id)
        assert refused.status_code == 403
        assert refused.json()["type"].endswith("/mfa-required")
        enrol_totp(client, auditor)
        assert _read(client, auditor, customer_id).status_code == 200
