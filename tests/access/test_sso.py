"""Single sign-on end to end against an OpenID provider running in this process (`tests/access/idp.py`), on
SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from obhut.access import service as access
from obhut.access.models import Staff
from obhut.access.service import Principal
from obhut.access.sso import SsoService
from obhut.access.sso_models import SsoProvider
from obhut.container import Container
from obhut.kit.db import unit_of_work
from tests.access.idp import BASE, CLIENT_ID, QUIET, SECRET, SSO, Idp, authorize, configure, idp, start, state_of
from tests.access.staff import bearer
from tests.conftest import WORKSPACE

pytestmark = QUIET
__all__ = ["idp"]  # the fixture, for pytest


def principal(container: Container, token: str) -> Principal:
    with unit_of_work(container.sessions) as session:
        return access.authenticate(session, token, container.policies.snapshot(session, WORKSPACE).roles)


def staff_count(container: Container) -> int:
    with unit_of_work(container.sessions) as session:
        return session.scalar(select(func.count()).select_from(Staff).where(Staff.sso_subject.is_not(None))) or 0


def test_a_new_subject_is_provisioned_with_the_mapped_role_through_pkce(
    client: TestClient, container: Container, idp: Idp
) -> None:
    configured = configure(client, idp)
    assert configured["client_secret_set"] is True
    assert configured["redirect_uri"].endswith(f"{BASE}/auth/sso/callback")
    assert configured["console_redirect_uri"].endswith(f"/console/sso/{WORKSPACE}/callback")
    assert SECRET not in client.get(SSO).text
    idp.user("u-1001", email="Ada.Lovelace@example.com", name="Ada Lovelace", groups=["staff", "cdp-support"])
    location = start(client)
    query = parse_qs(urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["client_id"] == [CLIENT_ID]
    assert set(query["scope"][0].split()) >= {"openid"}
    response = client.get(authorize(location, "u-1001"))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert (body["provisioned"], body["role"], body["amr"]) == (True, "support_agent", ["sso"])
    assert len(idp.guard.verified) == 1  # the code went back with a verifier that hashes to its challenge
    assert idp.guard.client_auth == [f"{CLIENT_ID}:{SECRET}"]  # the sealed secret, opened for the exchange
    with unit_of_work(container.sessions) as session:
        staff = session.get(Staff, (WORKSPACE, body["staff_id"]))
        assert staff is not None
        assert (staff.sso_issuer, staff.sso_subject, staff.password_hash) == (idp.url, "u-1001", None)
        assert (staff.username, staff.display_name) == ("ada.lovelace@example.com", "Ada Lovelace")
        row = session.get(SsoProvider, WORKSPACE)
        assert row is not None
        assert row.client_secret_sealed is not None
        assert SECRET.encode() not in row.client_secret_sealed
    signed_in = principal(container, body["token"])
    assert (signed_in.staff_id, signed_in.role, signed_in.has_mfa) == (body["staff_id"], "support_agent", False)


def test_the_same_subject_signs_in_again_to_the_same_account_with_its_current_role(
    client: TestClient, container: Container, idp: Idp
) -> None:
    configure(client, idp)
    idp.user("u-2002", email="grace@example.com", groups=["cdp-support"])
    first = client.get(authorize(start(client), "u-2002")).json()
    idp.user("u-2002", email="grace.new@example.com", groups=["cdp-support", "cdp-admins"])
    again = client.get(authorize(start(client), "u-2002"))
    assert again.status_code == 200, again.text
    second = again.json()
    assert second["staff_id"] == first["staff_id"]
    assert second["provisioned"] is False
    assert second["role"] == "admin"  # the provider's groups decide; the first mapping held wins
    assert second["token"] != first["token"]
    assert staff_count(container) == 1


@pytest.mark.parametrize(
    ("trust", "claims", "mfa"),
    [
        (True, {"amr": ["pwd", "otp"]}, True),
        (True, {"amr": ["pwd"], "acr": "https://refeds.org/profile/mfa"}, True),
        (True, {"amr": ["pwd", "rec"]}, False),  # not an RFC 8176 value: not taken as ours
        (False, {"amr": ["pwd", "hwk"], "acr": "https://refeds.org/profile/mfa"}, False),
    ],
)
def test_the_providers_amr_counts_as_mfa_only_when_trusted(
    client: TestClient, container: Container, idp: Idp, trust: bool, claims: dict[str, Any], mfa: bool
) -> None:
    configure(client, idp, trust_amr=trust)
    idp.user("u-3003", groups=["cdp-support"], **claims)
    response = client.get(authorize(start(client), "u-3003"))
    assert response.status_code == 200, response.text
    assert "sso" in response.json()["amr"]
    assert "rec" not in response.json()["amr"]
    assert principal(container, response.json()["token"]).has_mfa is mfa


def test_a_wrong_state_is_rejected_and_the_right_one_still_works(
    client: TestClient, container: Container, idp: Idp
) -> None:
    configure(client, idp)
    idp.user("u-4004", groups=["cdp-support"])
    callback = authorize(start(client), "u-4004")
    forged = callback.replace(state_of(callback), secrets.token_urlsafe(32))
    response = client.get(forged)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert idp.guard.token_requests == 0  # refused before the code was ever used
    assert client.get(callback).status_code == 200


def test_a_replayed_state_is_rejected(client: TestClient, idp: Idp) -> None:
    configure(client, idp)
    idp.user("u-5005", groups=["cdp-support"])
    callback = authorize(start(client), "u-5005")
    assert client.get(callback).status_code == 200
    replay = client.get(callback)
    assert replay.status_code == 401
    assert "already used" in replay.json()["detail"]
    assert idp.guard.token_requests == 1


def test_a_sign_in_cannot_be_finished_in_another_browser(client: TestClient, idp: Idp) -> None:
    configure(client, idp)
    idp.user("u-6006", groups=["cdp-support"])
    callback = authorize(start(client), "u-6006")
    client.cookies.clear()
    assert client.get(callback).status_code == 401


@pytest.mark.parametrize(("audience", "nonce", "claim"), [("another-app", None, "aud"), (CLIENT_ID, "stale", "nonce")])
def test_an_id_token_for_another_audience_or_nonce_is_rejected(
    client: TestClient, container: Container, idp: Idp, audience: str, nonce: str | None, claim: str
) -> None:
    configure(client, idp)
    location = start(client)
    expected_nonce = parse_qs(urlsplit(location).query)["nonce"][0]
    foreign = idp.id_token_for(audience, nonce or expected_nonce, "u-7007")
    idp.guard.substitute_id_token = foreign
    callback = authorize(location, "u-7007")
    response = client.get(callback)
    assert response.status_code == 401
    assert f"'{claim}'" in response.json()["detail"]
    code = parse_qs(urlsplit(callback).query)["code"][0]
    assert foreign not in response.text
    assert code not in response.text
    assert staff_count(container) == 0


def test_unknown_subjects_are_refused_without_auto_provisioning_and_known_ones_still_enter(
    client: TestClient, container: Container, idp: Idp
) -> None:
    configure(client, idp)
    idp.user("u-8008", groups=["cdp-support"])
    assert client.get(authorize(start(client), "u-8008")).status_code == 200
    kept = configure(client, idp, auto_provision=False, client_secret=None)
    assert kept["client_secret_set"] is True  # an omitted secret keeps the stored one
    idp.user("u-8009", groups=["cdp-support"])
    refused = client.get(authorize(start(client), "u-8009"))
    assert refused.status_code == 403
    assert "no staff account" in refused.json()["detail"]
    assert client.get(authorize(start(client), "u-8008")).status_code == 200
    assert staff_count(container) == 1
    assert idp.guard.client_auth[-1] == f"{CLIENT_ID}:{SECRET}"


def test_a_subject_without_a_mapped_role_is_refused_when_there_is_no_default(
    client: TestClient, container: Container, idp: Idp
) -> None:
    configure(client, idp)
    idp.user("u-9009", groups=["marketing"])
    assert client.get(authorize(start(client), "u-9009")).status_code == 403
    configure(client, idp, default_role="analyst")
    response = client.get(authorize(start(client), "u-9009"))
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "analyst"


def test_the_guard_refuses_a_code_verifier_that_does_not_match(client: TestClient, idp: Idp) -> None:
    configure(client, idp)
    idp.user("u-1010", groups=["cdp-support"])
    location = start(client)
    sso: SsoService = client.app.state.sso  # type: ignore[attr-defined]
    state = state_of(location)
    pending = sso.pending.take(state)
    assert pending is not None
    sso.pending.add(state, dataclasses.replace(pending, code_verifier=secrets.token_urlsafe(64)))
    response = client.get(authorize(location, "u-1010"))
    assert response.status_code == 401
    assert "invalid_grant" in response.json()["detail"]
    assert idp.guard.verified == []


def test_a_denial_at_the_provider_ends_the_sign_in(client: TestClient, idp: Idp) -> None:
    configure(client, idp)
    callback = authorize(start(client), "u-1111", action="deny")
    denied = client.get(callback)
    assert denied.status_code == 401
    assert "access_denied" in denied.json()["detail"]


def test_only_staff_managers_configure_and_settings_are_checked(client: TestClient, idp: Idp) -> None:
    configure(client, idp)
    idp.user("u-1212", groups=["cdp-support"])
    agent = client.get(authorize(start(client), "u-1212")).json()["token"]
    assert client.put(SSO, json={"issuer": idp.url, "client_id": "x"}, headers=bearer(agent)).status_code == 403
    assert client.get(SSO, headers=bearer(agent)).status_code == 403
    bad = client.put(
        SSO,
        json={"issuer": "http://idp.example.com", "client_id": "x", "role_map": {"g": "wizard"}, "scopes": ["a b"]},
    )
    assert bad.status_code == 422
    pointers = {e["pointer"] for e in bad.json()["errors"]}
    assert pointers == {"/issuer", "/role_map/g", "/role_claim", "/scopes/0"}
