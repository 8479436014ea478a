"""Invariant 1: no plaintext personal data at rest. Marker values go in through the API (created, updated,
looked up, rejected); then the database files (SQLite, or a pg_dump of PostgreSQL), the key store, the key
file and every captured log line are scanned for each marker, in its raw and its normalised form. Reprs and
the exceptions raised for invalid input are scanned too."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from obhut.container import Container
from obhut.customers import rules
from obhut.kit.db import unit_of_work
from obhut.kit.errors import ValidationFailedError
from obhut.kit.settings import Settings
from tests.conftest import WORKSPACE
from tests.services import unavailable

CUSTOMERS = f"/api/v1/workspaces/{WORKSPACE}/customers"
IBANS = ("DE75 1002 0030 7731 9900 01", "DE48 1002 0030 7731 9900 02", "DE21 1002 0030 7731 9900 03")
CARDS = ("4929 7731 9933 1705", "4929-7731-9933-1713", "4929773199331721")
UPDATE = {"given_name": "Kunigundeupdate", "email": "Updated.Zyxw@Example.ORG", "notes": "MARKERNOTE-updated"}


def marker_customer(n: int) -> dict[str, Any]:
    """Invented, distinctive values in every field (reserved domain, made-up numbers)."""
    return {
        "external_ref": f"QXREF-77{n}1",
        "given_name": f"Zyxwvmarker{'ABC'[n]}",
        "family_name": f"Quorblefrau{'XYZ'[n]}",
        "birth_date": f"196{n}-07-23",
        "email": f"Zyxw.Marker{n}@Example.COM",
        "phone": f"030 773199{n}3" if n % 2 else f"+49 30 773199{n}3",
        "postal_address": {
            "line1": f"Glimmerpfad {70 + n}",
            "line2": "Hinterhaus Xylofon",
            "postal_code": "QX9 7ZW",
            "city": "Quorbelstadt",
            "country": "GB",
        },
        "iban": IBANS[n],
        "card_number": CARDS[n],
        "notes": f"MARKERNOTE-{n} allergic to quorbles",
    }


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, str):
        yield value


def _markers() -> list[str]:
    """Raw and normalised forms of every value, plus the parts a partial leak would show."""
    found: set[str] = set(_leaves(UPDATE))
    for n in range(3):
        customer = marker_customer(n)
        found.update(_leaves(customer))
        phone = rules.normalise_phone(customer["phone"], "DE")
        iban = rules.normalise_iban(customer["iban"])
        card = rules.parse_card(customer["card_number"]).number
        found.update({customer["email"].lower(), rules.normalise_email(customer["email"]), phone, phone[1:]})
        found.update({iban, rules.format_iban(iban), iban[-10:], card, card[:12]})
    found.update({"Zyxwvmarker", "Quorblefrau", "MARKERNOTE", "Quorbelstadt", "Glimmerpfad"})
    return sorted(m for m in found if len(m) >= 6)  # country codes are no marker


MARKERS = _markers()


def _hits(blob: bytes) -> list[str]:
    lowered = blob.lower()
    return [m for m in MARKERS if m.encode() in blob or m.lower().encode() in lowered]


def _files(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def _pg_dumps(settings: Settings) -> bytes:
    candidates = [shutil.which("pg_dump"), *sorted(map(str, Path("/usr/lib/postgresql").glob("*/bin/pg_dump")))]
    pg_dump = next((c for c in candidates if c), None)
    if pg_dump is None:
        unavailable("pg_dump", "install the PostgreSQL client tools")
        return b""
    dumps = []
    for url in (settings.resolved_database_url, settings.resolved_keystore_url):
        result = subprocess.run([pg_dump, "--dbname", url], capture_output=True, check=False)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        dumps.append(result.stdout)
    assert b"CREATE TABLE public.customers" in dumps[0]
    assert b"CREATE TABLE public.keystore_secrets" in dumps[1]
    return b"".join(dumps)


@pytest.fixture
def sql_logging(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything at DEBUG, SQLAlchemy's statements and their parameters included."""
    caplog.set_level(logging.DEBUG)
    engine_logger = logging.getLogger("sqlalchemy.engine")
    level = engine_logger.level
    engine_logger.setLevel(logging.INFO)
    yield caplog
    engine_logger.setLevel(level)


def _use_the_api(client: TestClient) -> list[str]:
    client.params = httpx2.QueryParams(purpose="support")  # the owner's token: every field revealed
    ids = []
    for n in range(3):
        created = client.post(CUSTOMERS, json=marker_customer(n))
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    updated = client.patch(f"{CUSTOMERS}/{ids[0]}", json=UPDATE)
    assert updated.status_code == 200, updated.text
    assert updated.json()["given_name"] == "Kunigundeupdate"
    for key, expected in (
        ({"email": "ZYXW.MARKER1@EXAMPLE.COM"}, 1),
        ({"iban": IBANS[2]}, 2),
        ({"phone": "030 77319903"}, 0),
    ):
        found = client.post(f"{CUSTOMERS}/lookup", json=key)
        assert [c["id"] for c in found.json()["customers"]] == [ids[expected]], key
    assert client.get(f"{CUSTOMERS}/{ids[2]}").json()["notes"] == "MARKERNOTE-2 allergic to quorbles"
    rejected = client.post(CUSTOMERS, json={**marker_customer(0), "email": "Zyxw.Marker0@@example.com"})
    assert rejected.status_code == 422
    assert _hits(rejected.content) == []
    return ids


class TestNoPlaintextAtRest:
    def test_database_files_key_store_key_file_and_logs_hold_no_marker(
        self,
        client: TestClient,
        container: Container,
        settings: Settings,
        sql_logging: pytest.LogCaptureFixture,
    ) -> None:
        ids = _use_the_api(client)
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)

        # Statements and their parameters were logged, so the scan means something. (On PostgreSQL the bulk
        # insert path logs no INSERT line; the SELECTs carry blind-index parameters all the same.)
        assert "FROM customers" in sql_logging.text
        assert "UPDATE customers" in sql_logging.text
        assert _hits(sql_logging.text.encode()) == []

        data_dir = settings.data_dir
        if settings.database_url:
            at_rest = _pg_dumps(settings) + _files(data_dir)
        else:
            while_open = _files(data_dir)  # main and key store with their -wal and -shm files, and the key file
            container.close()  # the last connection checkpoints the WAL into the database file
            at_rest = while_open + _files(data_dir)
            assert {p.name for p in data_dir.iterdir()} >= {"obhut.db", "keystore.db", "master.key"}
        assert all(customer_id.encode() in at_rest for customer_id in ids), "the scan read the stored rows"
        assert _hits(at_rest) == []


class TestReprsAndErrors:
    def test_reprs_of_records_cards_and_ciphers_hold_no_marker(self, container: Container) -> None:
        with unit_of_work(container.sessions) as session:
            record = container.customers.create(session, WORKSPACE, marker_customer(0))
            keyring = container.vault.open(session, WORKSPACE)
            cipher = keyring.subject(record.id)
        card = rules.parse_card(CARDS[0])
        texts = [repr(record), str(record), repr(card), str(card), repr(cipher), repr(keyring)]
        assert record.values["given_name"] == "ZyxwvmarkerA"
        assert _hits(" ".join(texts).encode()) == []
        assert repr(record).startswith(f"CustomerRecord('{record.id}'")

    def test_the_error_for_invalid_input_holds_no_marker(self, container: Container) -> None:
        invalid = {
            **marker_customer(1),
            "email": "Zyxw.Marker1@@Example.COM",
            "phone": "+1 7731 9913",
            "iban": "DE00 1002 0030 7731 9900 02",
            "birth_date": "2961-07-23",
            "card_number": "4929 7731 9933 1700",
            "postal_address": {"line1": "Glimmerpfad 71", "city": "Quorbelstadt", "country": "GB"},
        }
        with unit_of_work(container.sessions) as session, pytest.raises(ValidationFailedError) as error:
            container.customers.create(session, WORKSPACE, invalid)
        assert len(error.value.errors) == 6
        assert _hits(self._describe(error.value).encode()) == []
        assert _hits(repr(error.value.errors).encode()) == []

    @pytest.mark.parametrize(
        ("check", "value"),
        [
            (rules.normalise_email, "Zyxw.Marker0@@Example.COM"),
            (lambda v: rules.normalise_phone(v, "DE"), "+1 7731 9903"),
            (lambda v: rules.normalise_phone(v, "DE"), "Zyxwvmarker phone"),
            (rules.normalise_iban, "DE00 1002 0030 7731 9900 01"),
            (rules.normalise_iban, "DE75 1002 0030 7731 9900"),
            (rules.parse_card, "4929 7731 9933 1700"),
            (lambda v: rules.normalise_birth_date(v, date(2026, 11, 23)), "2961-07-23"),
            (lambda v: rules.clean_text(v, 10), "Zyxwvmarker-Quorblefrau"),
        ],
    )
    def test_each_rule_rejects_without_the_value(self, check: Any, value: str) -> None:
        with pytest.raises(rules.InvalidValueError) as error:
            check(value)
        described = self._describe(error.value)
        assert value not in described
        assert _hits(described.encode()) == []

    @staticmethod
    def _describe(error: BaseException) -> str:
        """str and repr of the error and of every error chained to it, as a traceback would show them."""
        parts = []
        current: BaseException | None = error
        while current is not None:
            parts += [str(current), repr(current)]
            current = current.__cause__ or current.__context__
        return " ".join(parts)
