"""Test helpers: staff members and their sessions, created the way an administrator would."""

from __future__ import annotations

from typing import Any

import pyotp
from fastapi.testclient import TestClient

from obhut.access import service
from obhut.container import Container
from obhut.kit.db import unit_of_work
from tests.conftest import WORKSPACE

PASSWORD = "correct horse battery"
AUTH = f"/api/v1/workspaces/{WORKSPACE}/auth"


def add_staff(container: Container, username: str, role: str) -> str:
    with unit_of_work(container.sessions) as session:
        roles = container.policies.snapshot(session, WORKSPACE).roles
        staff = service.create_staff(
            session, WORKSPACE, username=username, display_name=username, role=role, roles=roles, password=PASSWORD
        )
        return staff.staff_id


def login(client: TestClient, username: str, **extra: Any) -> dict[str, Any]:
    response = client.post(f"{AUTH}/login", json={"username": username, "password": PASSWORD, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def enrol_totp(client: TestClient, token: str) -> tuple[pyotp.TOTP, list[str]]:
    """Sets up TOTP for the session's staff member; returns the generator and the recovery codes."""
    enrolment = client.post(f"{AUTH}/totp", headers=bearer(token)).json()
    totp = pyotp.TOTP(enrolment["secret"])
    confirmed = client.post(f"{AUTH}/totp/confirm", json={"code": totp.now()}, headers=bearer(token))
    assert confirmed.status_code == 200, confirmed.text
    return totp, confirmed.json()["recovery_codes"]


def signed_in_with_mfa(client: TestClient, container: Container, username: str, role: str) -> str:
    """A staff member with TOTP set up, and a session token that carries the second factor."""
    add_staff(container, username, role)
    token = login(client, username)["token"]
    enrol_totp(client, token)
    return token
