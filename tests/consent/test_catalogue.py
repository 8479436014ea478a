"""Reading the purpose catalogue back: each purpose as defined, with its notices' versions, for policy managers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from obhut.container import Container
from tests.access.staff import bearer, signed_in_with_mfa
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.usefixtures("backend")
PURPOSES = f"/api/v1/workspaces/{WORKSPACE}/consent/purposes"
LOYALTY = {
    "title_en": "Loyalty programme",
    "title_de": "Treueprogramm",
    "description_en": "Points for purchases",
    "description_de": "Punkte für Einkäufe",
    "legal_basis": "consent",
    "categories": ["contact", "identity"],
    "recipients": "Points partner (processor)",
    "retention": "until withdrawn",
    "sale_or_sharing": False,
}


def test_the_catalogue_lists_purposes_with_their_notice_versions(client: TestClient) -> None:
    assert client.get(PURPOSES).json() == []
    assert client.put(f"{PURPOSES}/loyalty", json=LOYALTY).status_code == 200
    assert (
        client.put(f"{PURPOSES}/fraud_checks", json={**LOYALTY, "legal_basis": "legitimate_interest"}).status_code
        == 200
    )
    for version, language in (("1.0", "de"), ("1.0", "en"), ("2.0", "de")):
        body = {"version": version, "language": language, "text": f"Text {version} {language}"}
        assert client.post(f"{PURPOSES}/loyalty/notices", json=body).status_code == 201
    listed = client.get(PURPOSES).json()
    assert [p["key"] for p in listed] == ["fraud_checks", "loyalty"]
    loyalty = listed[1]
    assert {k: loyalty[k] for k in LOYALTY} == LOYALTY
    assert [(n["version"], n["language"], n["major"]) for n in loyalty["notices"]] == [
        ("1.0", "de", 1), ("1.0", "en", 1), ("2.0", "de", 2)
    ]  # fmt: skip
    assert all(len(n["sha256"]) == 64 for n in loyalty["notices"])
    assert listed[0]["legal_basis"] == "legitimate_interest"
    assert listed[0]["notices"] == []


def test_the_catalogue_is_for_policy_managers(client: TestClient, container: Container) -> None:
    token = signed_in_with_mfa(client, container, "agent", "support_agent")
    refused = client.get(PURPOSES, headers=bearer(token))
    assert refused.status_code == 403
    assert "policy:manage" in refused.json()["detail"]


def test_keys_and_versions_are_checked(client: TestClient) -> None:
    bad_key = client.put(f"{PURPOSES}/Loyalty-Points", json=LOYALTY)
    assert bad_key.status_code == 422
    assert [e["pointer"] for e in bad_key.json()["errors"]] == ["/path/key"]
    assert client.put(f"{PURPOSES}/loyalty", json=LOYALTY).status_code == 200
    notice = {"version": "1.0", "language": "de", "text": "Punkte."}
    assert client.post(f"{PURPOSES}/loyalty/notices", json=notice).status_code == 201
    twice = client.post(f"{PURPOSES}/loyalty/notices", json={**notice, "text": "Other words."})
    assert twice.status_code == 409  # a published text stays as it was
    assert twice.headers["content-type"] == "application/problem+json"
    assert [e["key"] for e in client.get(PURPOSES).json()] == ["loyalty"]
