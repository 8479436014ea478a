"""Erased means erased, on SQLite and PostgreSQL. A restore drill: customers with distinctive invented
values, a backup, one of them erased, the backup restored: the other comes back whole, the erased one does
not come back (the erasure ledger outside the backup is replayed). Then the database files (or a fresh
pg_dump), the key store, the backups and every log line are scanned for the erased customer's values, and
nothing about them can be decrypted any more."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from obhut.audit.models import AuditEntry
from obhut.cli.backup import replay_erasures
from obhut.container import build
from obhut.kit.db import unit_of_work
from obhut.kit.settings import Settings
from obhut.retention import backups
from obhut.vault.errors import SubjectShreddedError
from obhut.vault.models import DataKey
from tests.conftest import WORKSPACE
from tests.rights.test_requests import REQUESTS, _verified

MARKERS = ("Xylophanta", "Quirrelbach", "xylophanta.quirrel@example.com", "Zwirbelgasse 9", "MARKER-ERASE-77")


def _marked() -> dict[str, Any]:
    return {
        "given_name": MARKERS[0], "family_name": MARKERS[1], "email": MARKERS[2], "external_ref": "K-7700",
        "postal_address": {"line1": MARKERS[3], "postal_code": "10115", "city": "Berlin", "country": "DE"},
        "notes": MARKERS[4], "iban": "DE02 1203 0000 0000 2020 51",
    }  # fmt: skip


def _bytes_at_rest(settings: Settings, tmp_path: Path) -> bytes:
    """The database files (with their write-ahead logs), or fresh dumps of both PostgreSQL databases."""
    if not settings.database_url:
        return b"".join(p.read_bytes() for p in sorted(settings.data_dir.glob("*.db*")))
    dumps = b""
    for url in settings.database_urls.values():
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        dumps += subprocess.run(["pg_dump", "--no-owner", plain], check=True, capture_output=True).stdout
    return dumps


def test_a_restored_backup_does_not_resurrect_an_erased_customer(
    client: TestClient,
    customer_id: str,
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    erased = str(client.post(f"/api/v1/workspaces/{WORKSPACE}/customers", json=_marked()).json()["id"])
    assert (
        client.get(f"/api/v1/workspaces/{WORKSPACE}/customers/{erased}", params={"purpose": "support"}).json()["notes"]
        == MARKERS[4]
    )
    kept_before = client.get(f"/api/v1/workspaces/{WORKSPACE}/customers/{customer_id}", params={"purpose": "support"})
    created = backups.create(settings, tmp_path / "backups")

    request_id = _verified(client, erased, "erasure")
    assert client.post(f"{REQUESTS}/{request_id}/complete").status_code == 200
    client.app.state.container.close()  # type: ignore[attr-defined] - the service stops for a restore
    backup_id = created.manifest.backup_id
    report = backups.restore(settings, created.path, after_restore=lambda s: replay_erasures(s, backup_id))
    assert report.erasures_replayed == 1

    restored = build(settings)
    try:
        with unit_of_work(restored.sessions) as session:
            kept_after = restored.customers.get(session, WORKSPACE, customer_id)
            assert kept_after.values["email"] == kept_before.json()["email"]  # nothing lost
            with pytest.raises(SubjectShreddedError):
                restored.customers.get(session, WORKSPACE, erased)  # nothing resurrected
            assert session.scalars(select(DataKey).where(DataKey.subject_id == erased)).all() == []
            with pytest.raises(SubjectShreddedError):
                restored.vault.open(session, WORKSPACE).subject(erased)
        assert restored.rights.ledger.entries()[-1].customer_id == erased
        with unit_of_work(restored.sessions) as session:
            logged = session.scalars(select(AuditEntry).where(AuditEntry.action == "cli:backup:restore")).one()
            assert (logged.target, logged.count) == (f"backup:{backup_id}", 1)
        for marker in MARKERS:
            haystack = _bytes_at_rest(settings, tmp_path)
            assert marker.encode() not in haystack
            assert marker.lower().encode() not in haystack.lower()
            for backup_file in created.path.iterdir():
                assert marker.encode() not in backup_file.read_bytes()
            assert marker not in caplog.text
            assert marker not in restored.rights.ledger.path.read_text()
    finally:
        restored.close()
