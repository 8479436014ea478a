"""Segmentation, on SQLite and PostgreSQL: the financial and notes categories kept in a sensitive database of their
own, under a key of their own. The main database then holds none of their ciphertext, only a reference; the
sensitive database alone opens to nothing without the customers' data keys; reads, lookups, changes, erasure,
imports and backups work as before; a rolled-back write leaves nothing behind; a superseded record goes in the
sweep; tampering is reported."""

from __future__ import annotations

import base64
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from obhut.container import Container, build
from obhut.customers import tasks as customer_tasks
from obhut.customers.models import Customer
from obhut.customers.segments import KEPT_APART
from obhut.kit.db import unit_of_work
from obhut.kit.errors import ConfigurationError
from obhut.kit.settings import Settings
from obhut.retention import backups
from obhut.retention.ports import BackupError
from obhut.vault import rules
from obhut.vault import sensitive as sensitive_module
from obhut.vault.errors import SubjectShreddedError
from obhut.vault.keyring import IntegrityError
from obhut.vault.models import KeyVersion, SensitiveKey, SensitiveRecord
from obhut.vault.ports import KeyUnusableError, WrapItem
from obhut.vault.providers import build_providers
from obhut.vault.sensitive import SensitiveStore
from tests.conftest import WORKSPACE, jane, reveal_all

IBAN = "DE89370400440532013000"
APART = ("iban", "card", "notes")


pytestmark = pytest.mark.sensitive_store


@pytest.fixture
def plain_settings(settings: Settings) -> Settings:
    """The same main database and key store, without the sensitive one."""
    return settings.model_copy(update={"sensitive_url": ""})


def _store(container: Container) -> SensitiveStore:
    assert container.vault.sensitive is not None
    return container.vault.sensitive


def _records(container: Container, subject_id: str | None = None) -> list[SensitiveRecord]:
    query = select(SensitiveRecord).where(SensitiveRecord.workspace_id == WORKSPACE)
    if subject_id is not None:
        query = query.where(SensitiveRecord.subject_id == subject_id)
    with _store(container)._sessions() as store:
        return list(store.scalars(query))


def _store_session(container: Container) -> Session:
    return _store(container)._sessions()


def _row(container: Container, customer_id: str) -> Customer:
    with container.sessions() as session:
        found = session.get(Customer, (WORKSPACE, customer_id))
        assert found is not None
        return found


def _add(container: Container, **overrides: object) -> str:
    with unit_of_work(container.sessions) as session:
        return container.customers.create(session, WORKSPACE, jane(**overrides)).id


def test_the_categories_live_apart_and_read_as_before(container: Container, client: TestClient) -> None:
    customer_id = _add(container)
    row = _row(container, customer_id)
    assert (row.iban, row.card, row.notes) == (KEPT_APART,) * 3  # that they have a value: the survey sees it
    assert row.given_name is not None
    assert row.email is not None
    assert row.iban_index is not None
    assert row.card_index is not None
    (record,) = _records(container, customer_id)
    assert record.ref == row.sensitive_ref
    assert len(record.ref) == sensitive_module.REF_BYTES

    with unit_of_work(container.sessions) as session:
        values = container.customers.get(session, WORKSPACE, customer_id).values
        by_iban = container.customers.lookup(session, WORKSPACE, "iban", IBAN, reveal_all())
        by_card = container.customers.lookup(session, WORKSPACE, "card", "4111111111111111", reveal_all())
        page = container.customers.browse(
            session, WORKSPACE, "", 10, reveal_all(), container.vault.open(session, WORKSPACE)
        )
    assert values["iban"] == IBAN
    assert values["notes"] == "Prefers email contact"
    assert values["card"]["last4"] == "1111"
    assert [v.id for v in by_iban] == [customer_id]
    assert by_iban[0].values["iban"] == IBAN
    assert [v.id for v in by_card] == [customer_id]
    assert page[0].values["iban"] == IBAN
    shown = client.get(f"/api/v1/workspaces/{WORKSPACE}/customers/{customer_id}", params={"purpose": "support"})
    assert shown.status_code == 200
    assert shown.json()["iban"] == IBAN


def test_the_store_has_its_own_key(container: Container) -> None:
    _add(container)
    with _store_session(container) as store:
        key = store.scalars(select(SensitiveKey)).one()
    with container.sessions() as session:
        roots = set(session.scalars(select(KeyVersion.key_ref)))
    assert key.key_ref not in roots
    assert key.key_ref.startswith(f"obhut-{WORKSPACE}-sensitive-")
    assert build_providers(container.settings)[key.provider].exists(key.key_ref)


def _main_bytes(settings: Settings) -> bytes:
    """The main database's file (with its write-ahead log), or a fresh dump of it."""
    if not settings.database_url:
        return b"".join(p.read_bytes() for p in sorted(settings.data_dir.glob("obhut.db*")))
    plain = settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    return subprocess.run(["pg_dump", "--no-owner", "--inserts", plain], check=True, capture_output=True).stdout


def test_the_main_database_alone_holds_none_of_them(container: Container, plain_settings: Settings) -> None:
    customer_id = _add(container)
    with unit_of_work(container.sessions) as session:
        container.customers.update(session, WORKSPACE, customer_id, {"iban": "DE02120300000000202051"})
        keyring = container.vault.open(session, WORKSPACE)
        ref = _row(container, customer_id).sensitive_ref
        assert ref is not None
        fields = _store(container).get(keyring, {ref: customer_id})[ref]
    assert sorted(fields) == sorted(APART)
    with container.sessions() as session:  # no checkpoint pending: the main database's bytes are on disk
        if not plain_settings.database_url:
            session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    at_rest = _main_bytes(plain_settings)
    for blob in fields.values():  # the kept-apart ciphertexts: nowhere in the main database, in any form
        assert blob not in at_rest
        assert blob.hex().encode() not in at_rest.lower()
        assert base64.b64encode(blob) not in at_rest
    plain = build(plain_settings)  # the main database and its key store, as a breach of them would have them
    try:
        with unit_of_work(plain.sessions) as session, pytest.raises(ConfigurationError, match="OBHUT_SENSITIVE_URL"):
            plain.customers.get(session, WORKSPACE, customer_id)
    finally:
        plain.close()


def test_the_sensitive_database_alone_opens_to_nothing_once_the_data_key_is_gone(container: Container) -> None:
    customer_id = _add(container)
    (copy,) = _records(container, customer_id)  # a copy of the sensitive database, taken before the erasure
    with unit_of_work(container.sessions) as session:
        container.customers.shred(session, WORKSPACE, customer_id)
    assert _records(container, customer_id) == []  # deleted once the erasure committed
    with unit_of_work(_store(container)._sessions) as store:
        store.add(
            SensitiveRecord(
                workspace_id=WORKSPACE,
                ref=copy.ref,
                subject_id=customer_id,
                sealed=copy.sealed,
                created_at=copy.created_at,
            )
        )
    with unit_of_work(container.sessions) as session:
        keyring = container.vault.open(session, WORKSPACE)
        fields = _store(container).get(keyring, {copy.ref: customer_id})[copy.ref]
        assert sorted(fields) == sorted(APART)  # the store's own layer opens: still sealed under the data key
        with pytest.raises(SubjectShreddedError):
            keyring.subject(customer_id)
    assert _row(container, customer_id).sensitive_ref is None


def test_a_change_writes_a_new_record_and_the_old_goes_at_commit(container: Container) -> None:
    customer_id = _add(container)
    other = _add(container, external_ref="K-0002", email="other@example.com")
    before = _row(container, customer_id).sensitive_ref
    with unit_of_work(container.sessions) as session:
        container.customers.update(session, WORKSPACE, customer_id, {"email": "unchanged.apart@example.com"})
    assert _row(container, customer_id).sensitive_ref == before  # no field kept apart changed: same record
    with unit_of_work(container.sessions) as session:
        changed = container.customers.update(session, WORKSPACE, customer_id, {"iban": "DE02120300000000202051"})
    assert changed.values["iban"] == "DE02120300000000202051"
    assert changed.values["notes"] == "Prefers email contact"
    after = _row(container, customer_id).sensitive_ref
    assert after not in (None, before)
    assert [r.ref for r in _records(container, customer_id)] == [after]
    assert len(_records(container, other)) == 1
    with unit_of_work(container.sessions) as session:
        assert container.customers.get(session, WORKSPACE, customer_id).values["iban"] == "DE02120300000000202051"


def test_a_backup_holds_deletions_and_the_sweep_makes_up_for_them(
    container: Container, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_id = _add(container)
    before = _row(container, customer_id).sensitive_ref
    with sensitive_module.holding(settings.sensitive_url):
        with unit_of_work(container.sessions) as session:
            container.customers.update(session, WORKSPACE, customer_id, {"iban": "DE02120300000000202051"})
        assert before in {r.ref for r in _records(container, customer_id)}  # what the main dump may point to
        monkeypatch.setattr(sensitive_module, "SWEEP_AFTER", timedelta(minutes=-1))
        assert customer_tasks.sweep_sensitive(container.vault, container.sessions) == 0  # held
    assert customer_tasks.sweep_sensitive(container.vault, container.sessions) == 1
    assert [r.ref for r in _records(container, customer_id)] == [_row(container, customer_id).sensitive_ref]


def test_a_rolled_back_write_leaves_no_record(container: Container) -> None:
    seen: list[int] = []

    def failing_request() -> None:
        with unit_of_work(container.sessions) as session:
            container.customers.create(session, WORKSPACE, jane())
            seen.append(len(_records(container)))  # committed in the store, before the main transaction
            raise RuntimeError("the request fails after the write")

    with pytest.raises(RuntimeError):
        failing_request()
    assert seen == [1]
    assert _records(container) == []
    with container.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 0


def test_clearing_a_field_rewrites_the_record_at_once(container: Container) -> None:
    customer_id = _add(container)
    with unit_of_work(container.sessions) as session:
        container.customers.clear(session, WORKSPACE, customer_id, ["iban"])
    (record,) = _records(container, customer_id)  # the record that held the IBAN went with the commit
    assert record.ref == _row(container, customer_id).sensitive_ref
    with unit_of_work(container.sessions) as session:
        values = container.customers.get(session, WORKSPACE, customer_id).values
    assert values["iban"] is None
    assert values["card"]["last4"] == "1111"
    with unit_of_work(container.sessions) as session:
        container.customers.clear(session, WORKSPACE, customer_id, list(APART))
    assert _records(container, customer_id) == []
    assert _row(container, customer_id).sensitive_ref is None


def test_an_import_batch_keeps_them_apart(container: Container) -> None:
    with unit_of_work(container.sessions) as session:
        keyring = container.vault.open(session, WORKSPACE)
        batch = [
            container.customers.validate(session, WORKSPACE, jane(external_ref=f"K-1{n}", email=f"i{n}@example.com"))
            for n in range(3)
        ]
        batch.append(container.customers.validate(session, WORKSPACE, {"family_name": "Ohnekonto"}))
        ids = container.customers.add_many(session, keyring, batch)
    assert len(_records(container)) == 3
    assert _row(container, ids[3]).sensitive_ref is None  # nothing to keep apart: no record
    with unit_of_work(container.sessions) as session:
        records = list(container.customers.records(session, WORKSPACE))
    assert [r.values["iban"] for r in records if r.id in ids[:3]] == [IBAN] * 3


def test_tampering_is_reported(container: Container) -> None:
    customer_id = _add(container)
    other = _add(container, external_ref="K-0002", email="other@example.com")
    ref = _row(container, customer_id).sensitive_ref
    with unit_of_work(_store(container)._sessions) as store:
        sealed = store.scalars(select(SensitiveRecord.sealed).where(SensitiveRecord.ref == ref)).one()
        store.execute(
            update(SensitiveRecord)
            .where(SensitiveRecord.ref == ref)
            .values(sealed=sealed[:-1] + bytes([sealed[-1] ^ 1]))
        )
    with unit_of_work(container.sessions) as session, pytest.raises(IntegrityError, match="does not authenticate"):
        container.customers.get(session, WORKSPACE, customer_id)
    with unit_of_work(container.sessions) as session:  # another customer's record pointed to
        session.execute(
            update(Customer)
            .where(Customer.id == customer_id)
            .values(sensitive_ref=_row(container, other).sensitive_ref)
        )
    with unit_of_work(container.sessions) as session, pytest.raises(IntegrityError, match="belongs to another"):
        container.customers.get(session, WORKSPACE, customer_id)
    with unit_of_work(_store(container)._sessions) as store:
        store.execute(delete(SensitiveRecord).where(SensitiveRecord.subject_id == other))
    with unit_of_work(container.sessions) as session, pytest.raises(IntegrityError, match="missing"):
        container.customers.get(session, WORKSPACE, other)


def test_a_customer_stored_before_moves_apart_on_the_next_change(
    container: Container, plain_settings: Settings
) -> None:
    plain = build(plain_settings)
    try:
        with unit_of_work(plain.sessions) as session:
            customer_id = plain.customers.create(session, WORKSPACE, jane()).id
    finally:
        plain.close()
    assert _row(container, customer_id).iban is not None
    assert _records(container) == []
    with unit_of_work(container.sessions) as session:
        assert container.customers.get(session, WORKSPACE, customer_id).values["iban"] == IBAN
        container.customers.update(session, WORKSPACE, customer_id, {"email": "moved@example.com"})
    row = _row(container, customer_id)
    assert (row.iban, row.notes, row.card) == (KEPT_APART,) * 3
    assert row.sensitive_ref is not None
    with unit_of_work(container.sessions) as session:
        assert container.customers.get(session, WORKSPACE, customer_id).values["iban"] == IBAN


def test_a_backup_holds_and_restores_all_three(
    container: Container,
    settings: Settings,
    plain_settings: Settings,
    tmp_path: Path,
) -> None:
    customer_id = _add(container)
    created = backups.create(settings, tmp_path / "backups")
    assert [entry.database for entry in created.manifest.databases] == ["main", "keystore", "sensitive"]
    with unit_of_work(container.sessions) as session:  # the record the backup points to goes at commit
        container.customers.update(session, WORKSPACE, customer_id, {"iban": "DE02120300000000202051"})
    container.close()
    with pytest.raises(BackupError, match="OBHUT_SENSITIVE_URL"):
        backups.verify(plain_settings, created.path)
    backups.restore(settings, created.path)
    restored = build(settings)
    try:
        with unit_of_work(restored.sessions) as session:
            assert restored.customers.get(session, WORKSPACE, customer_id).values["iban"] == IBAN
    finally:
        restored.close()


def test_revocation_reaches_the_stores_own_key(container: Container) -> None:
    customer_id = _add(container)
    with _store_session(container) as store:
        key = store.scalars(select(SensitiveKey)).one()
    provider = container.vault.provider(key.provider)
    wrapped = [WrapItem(key.wrapped, rules.sensitive_key_aad(WORKSPACE, key.key_ref))]
    with unit_of_work(container.sessions) as session:
        container.vault.revoke(session, WORKSPACE)
    with pytest.raises(KeyUnusableError):
        provider.unwrap(key.key_ref, wrapped)
    with unit_of_work(container.sessions) as session:
        container.vault.restore(session, WORKSPACE)
    assert len(provider.unwrap(key.key_ref, wrapped)[0]) == 32
    with unit_of_work(container.sessions) as session:
        assert container.customers.get(session, WORKSPACE, customer_id).values["iban"] == IBAN


def test_an_unknown_category_is_refused_at_start(settings: Settings) -> None:
    with pytest.raises(ConfigurationError, match="'finance', not a data category"):
        build(settings.model_copy(update={"sensitive_categories": "finance,notes"}))


def test_an_erasure_stands_when_the_store_fails_after_it(
    container: Container, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    customer_id = _add(container)
    store = _store(container)

    def unreachable(*_: object) -> None:
        raise OperationalError("DELETE", {}, Exception("the sensitive database went away"))

    with monkeypatch.context() as patched:
        patched.setattr(store, "_delete", unreachable)
        with unit_of_work(container.sessions) as session:
            container.customers.shred(session, WORKSPACE, customer_id)
    assert "1 sensitive records are left for the sweep" in caplog.text
    assert _row(container, customer_id).erased_at is not None
    assert len(_records(container, customer_id)) == 1
    monkeypatch.setattr(sensitive_module, "SWEEP_AFTER", timedelta(minutes=-1))
    assert customer_tasks.sweep_sensitive(container.vault, container.sessions) == 1
    assert _records(container, customer_id) == []


def test_a_category_no_longer_kept_apart_goes_back_on_the_next_change(container: Container, settings: Settings) -> None:
    customer_id = _add(container)
    container.close()
    narrower = build(settings.model_copy(update={"sensitive_categories": "financial"}))
    try:
        with unit_of_work(narrower.sessions) as session:
            assert narrower.customers.get(session, WORKSPACE, customer_id).values["notes"] == "Prefers email contact"
            narrower.customers.update(session, WORKSPACE, customer_id, {"email": "narrower@example.com"})
        row = _row(narrower, customer_id)
        assert row.notes not in (None, KEPT_APART)  # back in the main row
        assert (row.iban, row.card) == (KEPT_APART, KEPT_APART)
        with unit_of_work(narrower.sessions) as session:
            values = narrower.customers.get(session, WORKSPACE, customer_id).values
        assert (values["notes"], values["iban"]) == ("Prefers email contact", IBAN)
    finally:
        narrower.close()


def test_a_record_lacking_a_field_its_row_has_is_reported(container: Container) -> None:
    customer_id = _add(container, notes=None)
    with unit_of_work(container.sessions) as session:
        session.execute(update(Customer).where(Customer.id == customer_id).values(notes=KEPT_APART))
    with unit_of_work(container.sessions) as session, pytest.raises(IntegrityError, match="lacks a field"):
        container.customers.get(session, WORKSPACE, customer_id)
