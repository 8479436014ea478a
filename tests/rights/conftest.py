"""The rights tests' customer: Jane, with a consent and a support read on record."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import WORKSPACE, jane
from tests.consent.test_ledger import define_catalogue

BASE = f"/api/v1/workspaces/{WORKSPACE}"


@pytest.fixture
def customer_id(client: TestClient) -> str:
    define_catalogue(client)
    created = client.post(f"{BASE}/customers", json=jane())
    customer = str(created.json()["id"])
    granted = {"purpose": "newsletter", "kind": "granted", "notice_version": "1.0", "language": "de"}
    assert client.post(f"{BASE}/consent/customers/{customer}/events", json=granted).status_code == 201
    assert client.get(f"{BASE}/customers/{customer}", params={"purpose": "support"}).status_code == 200
    return customer
