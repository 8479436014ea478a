"""Invariant 1: no plaintext personal data at rest. Marker values go in through the API; then the database
files (SQLite, or a pg_dump of PostgreSQL), the key store and every captured log line are scanned."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from obhut.container import Container
from obhut.customers.rules import parse_card
from obhut.kit.errors import ValidationFailedError
from obhut.kit.settings import Settings
from tests.conftest import WORKSPACE
from tests.services import unavailable

MARKER_CUSTOMER = {
    "external_ref": "QXREF-7731",
    "given_name": "Zyxwvmarker",
    "family_name": "Quorblefrau",
    "birth_date": "1961-07-23",
    "email": "Zyxw.Quorble@example.com",
    "phone": "+49 30 98765432",
    "postal_address": {"line1": "Glimmerpfad 77", "postal_code": "10999", "city": "Quorbelstadt", "country": "DE"},
    "iban": "DE02 1203 0000 0000 2020 51",
    "card_number": "5555 5555 5555 4444",
    "notes": "MARKERNOTE-allergic-to-quorbles",
}
MARKERS = [
    "QXREF-7731",
    "Zyxwvmarker",
    "Quorblefrau",
    "1961-07-23",
    "Zyxw.Quorble",
    "zyxw.quorble",
    "98765432",
    "+493098765432",
    "Glimmerpfad",
    "Quorbelstadt",
    "DE02120300000000202051",
    "DE02 1203",
    "5555555555554444",
    "5555 5555",
    "MARKERNOTE",
    "Kunigundeupdate",
]


def _hits(blob: bytes) -> list[str]:
    return [m for m in MARKERS if m.encode() in blob or m.lower().encode() in blob.lower()]


def _database_bytes(settings: Settings, container: Container, tmp_path: Path) -> bytes:
    container.close()  # checkpoint and release the files
    if settings.database_url == "":
        return b"".join(p.read_bytes() for p in (tmp_path / "var").glob("*.db*"))
    pg_dump = shutil.which("pg_dump") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))), None)
    if pg_dump is None:
        unavailable("pg_dump", "install the PostgreSQL client tools")
    dumps = [
        subprocess.run([str(pg_dump), "--dbname", url], capture_output=True, check=True).stdout
        for url in (settings.resolved_database_url, settings.resolved_keystore_url)
    ]
    assert b"CREATE TABLE public.customers" in dumps[0]
    return b"".join(dumps)


class TestNoPlaintextAtRest:
    def test_database_key_store_and_logs_hold_no_marker(
        self,
        client: TestClient,
        container: Container,
        settings: Settings,
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # statements and parameters too
        created = client.post(f"/api/v1/workspaces/{WORKSPACE}/customers", json=MARKER_CUSTOMER)
        assert created.status_code == 201, created.text
        customer_id = created.json()["id"]
        assert (
            client.patch(
                f"/api/v1/workspaces/{WORKSPACE}/customers/{customer_id}", json={"given_name": "Kunigundeupdate"}
            ).status_code
            == 200
        )
        found = client.post(f"/api/v1/workspaces/{WORKSPACE}/customers/lookup", json={"iban": "DE02120300000000202051"})
        assert [c["id"] for c in found.json()["customers"]] == [customer_id]
        bad = client.post(f"/api/v1/workspaces/{WORKSPACE}/customers", json={**MARKER_CUSTOMER, "email": "Zyxw@@bad"})
        assert bad.status_code == 422
        assert _hits(bad.content) == []
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)

        assert caplog.records, "logging was captured"
        assert "INSERT INTO customers" in caplog.text
        assert _hits(caplog.text.encode()) == []
        stored = _database_bytes(settings, container, tmp_path)
        assert b"vault_data_keys" in stored
        assert len(stored) > 10_000
        assert _hits(stored) == []


class TestReprsAndErrors:
    def test_no_value_in_reprs_or_validation_errors(self, container: Container) -> None:
        from obhut.kit.db import unit_of_work  # noqa: PLC0415

        with unit_of_work(container.sessions) as session:
            record = container.customers.create(session, WORKSPACE, MARKER_CUSTOMER)
            cipher = container.vault.open(session, WORKSPACE).subject(record.id)
            with pytest.raises(ValidationFailedError) as error:
                container.customers.create(session, WORKSPACE, {**MARKER_CUSTOMER, "iban": "DE02 1203 9999"})
        texts = [
            repr(record),
            str(record),
            repr(cipher),
            repr(parse_card("5555 5555 5555 4444")),
            str(error.value),
            repr(error.value.errors),
        ]
        assert _hits(" ".join(texts).encode()) == []
        assert "iban" in str(error.value)
