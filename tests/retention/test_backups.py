"""Backups on SQLite and PostgreSQL: made while the databases are open, verified, restored; every change
to a backup fails verify by name; no plaintext personal data in a backup."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from obhut.audit.models import AuditEntry
from obhut.cli.main import app
from obhut.container import Container, build
from obhut.kit.db import unit_of_work
from obhut.kit.errors import NotFoundError
from obhut.kit.settings import Settings
from obhut.retention import backups
from obhut.retention.backups import KEY_REF, MANIFEST
from obhut.retention.ports import BackupError
from obhut.vault.providers import build_providers
from obhut.vault.streams import StreamError
from tests.access.staff import bearer, signed_in_with_mfa
from tests.conftest import WORKSPACE, jane

# Each of Jane's values as it could sit in storage: as entered and as normalised.
PLAINTEXTS = (
    "Musterfrau",
    "Jane.Musterfrau@example.com",
    "jane.musterfrau@example.com",
    "+49301234567",
    "Beispielweg 1",
    "DE89370400440532013000",
    "DE89 3704 0044 0532 0130 00",
    "4111111111111111",
    "Prefers email contact",
    "1985-04-12",
)


def _add(container: Container, **overrides: object) -> str:
    with unit_of_work(container.sessions) as session:
        return container.customers.create(session, WORKSPACE, jane(**overrides)).id


def _given_name(container: Container, customer_id: str) -> object:
    with unit_of_work(container.sessions) as session:
        return container.customers.get(session, WORKSPACE, customer_id).values["given_name"]


@pytest.fixture
def backup(container: Container, settings: Settings, tmp_path: Path) -> tuple[backups.CreatedBackup, str]:
    """Jane stored, then a backup taken while the container's engines are open."""
    customer_id = _add(container)
    return backups.create(settings, tmp_path / "backups"), customer_id


def _damaged(created: backups.CreatedBackup, tmp_path: Path) -> Path:
    copy = tmp_path / "damaged" / created.path.name
    shutil.copytree(created.path, copy)
    return copy


def _file(created: backups.CreatedBackup, database: str) -> str:
    return next(entry.file for entry in created.manifest.databases if entry.database == database)


class TestRoundTrip:
    def test_restore_brings_back_what_was_backed_up(
        self, backup: tuple[backups.CreatedBackup, str], container: Container, settings: Settings
    ) -> None:
        created, jane_id = backup
        assert created.path.name.startswith("obhut-backup-")
        assert created.path.name.endswith(created.manifest.backup_id[-8:])
        assert {entry.database: entry.kind for entry in created.manifest.databases} == {
            "main": "postgresql" if settings.database_url else "sqlite",
            "keystore": "postgresql" if settings.database_url else "sqlite",
        }
        with unit_of_work(container.sessions) as session:
            container.customers.update(session, WORKSPACE, jane_id, {"given_name": "Janet"})
        later_id = _add(container, external_ref="K-0002", email="erika.beispiel@example.com")
        container.close()  # the service is stopped for a restore
        calls: list[Settings] = []

        def after_restore(restored: Settings) -> int:
            calls.append(restored)
            return 3

        report = backups.restore(settings, created.path, after_restore=after_restore)

        assert calls == [settings]
        assert report.erasures_replayed == 3
        counts = {check.database: check.row_counts for check in report.verified.databases}
        assert counts["main"]["customers"] == 1
        assert counts["keystore"]["alembic_version"] == 1
        restored = build(settings)
        try:
            assert _given_name(restored, jane_id) == "Jane"
            with pytest.raises(NotFoundError, match="no customer"):
                _given_name(restored, later_id)
        finally:
            restored.close()

    def test_verify_reports_revisions_and_rows(
        self, backup: tuple[backups.CreatedBackup, str], settings: Settings
    ) -> None:
        created, _ = backup
        report = backups.verify(settings, created.path)
        for check, entry in zip(report.databases, created.manifest.databases, strict=True):
            assert check.revision == entry.revision
            assert check.revision is not None
            assert check.revision.startswith(check.database)
        assert report.databases[0].row_counts["customers"] == 1
        assert report.databases[1].row_counts["keystore_secrets"] > 0

    def test_the_key_is_wrapped_by_the_provider(
        self, backup: tuple[backups.CreatedBackup, str], settings: Settings
    ) -> None:
        manifest = backup[0].manifest
        assert (manifest.provider, manifest.key_ref) == ("local", KEY_REF)
        assert build_providers(settings)["local"].exists(KEY_REF)


class TestTampering:
    def test_a_changed_byte(
        self, backup: tuple[backups.CreatedBackup, str], settings: Settings, tmp_path: Path
    ) -> None:
        created, _ = backup
        copy = _damaged(created, tmp_path)
        target = copy / _file(created, "main")
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
        with pytest.raises(
            StreamError, match=rf"^{_file(created, 'main')}: chunk \d+ does not authenticate: .*altered"
        ):
            backups.verify(settings, copy)

    def test_a_truncated_file(
        self, backup: tuple[backups.CreatedBackup, str], settings: Settings, tmp_path: Path
    ) -> None:
        created, _ = backup
        copy = _damaged(created, tmp_path)
        target = copy / _file(created, "keystore")
        target.write_bytes(target.read_bytes()[:-100])
        with pytest.raises(StreamError, match=rf"^{_file(created, 'keystore')}: chunk \d+ is incomplete: .*truncated"):
            backups.verify(settings, copy)

    @pytest.mark.parametrize(("field", "value"), [("obhut_version", "9.9.9"), ("backup_id", "another")])
    def test_a_changed_manifest(
        self, backup: tuple[backups.CreatedBackup, str], settings: Settings, tmp_path: Path, field: str, value: str
    ) -> None:
        copy = _damaged(backup[0], tmp_path)
        document = json.loads((copy / MANIFEST).read_text())
        document[field] = value
        (copy / MANIFEST).write_text(json.dumps(document))
        with pytest.raises(StreamError, match=rf"^{MANIFEST}: .*altered"):
            backups.verify(settings, copy)


class TestFailedCreate:
    def test_leaves_no_half_backup(self, tmp_path: Path) -> None:
        empty = Settings(data_dir=tmp_path / "var", key_file=tmp_path / "keys" / "master.key")
        with pytest.raises(BackupError, match="no SQLite database at"):
            backups.create(empty, tmp_path / "backups")
        assert list((tmp_path / "backups").iterdir()) == []


class TestPrivacy:
    def test_no_plaintext_in_the_backup(self, backup: tuple[backups.CreatedBackup, str]) -> None:
        created, _ = backup
        files = sorted(created.path.iterdir())
        assert [f.name for f in files] == sorted([MANIFEST, *(e.file for e in created.manifest.databases)])
        for file in files:
            data = file.read_bytes()
            assert file.stat().st_mode & 0o077 == 0
            for value in PLAINTEXTS:
                assert value.encode() not in data, f"{value!r} in {file.name}"
                assert value.encode("utf-16-le") not in data


class TestCommandLine:
    def test_create_verify_and_a_refused_restore(
        self, container: Container, settings: Settings, tmp_path: Path
    ) -> None:
        _add(container)
        runner = CliRunner(
            env={
                "OBHUT_DATA_DIR": str(settings.data_dir),
                "OBHUT_DATABASE_URL": settings.resolved_database_url,
                "OBHUT_KEYSTORE_URL": settings.resolved_keystore_url,
                "OBHUT_KEY_FILE": str(settings.resolved_key_file),
                "OBHUT_KEY_PROVIDER": "local",
                "OBHUT_BACKUP_DIR": str(tmp_path / "backups"),
                "COLUMNS": "200",
            }
        )
        created = runner.invoke(app, ["backup", "create"], catch_exceptions=False)
        assert created.exit_code == 0, created.output
        folder = Path(created.stdout.strip().splitlines()[-1])
        assert folder.parent == tmp_path / "backups"
        with unit_of_work(container.sessions) as session:
            logged = session.scalars(
                select(AuditEntry).where(AuditEntry.workspace_id == WORKSPACE, AuditEntry.action == "cli:backup:create")
            ).one()
            assert logged.target == f"backup:{json.loads((folder / MANIFEST).read_text())['backup_id']}"

        verified = runner.invoke(app, ["backup", "verify", str(folder)], catch_exceptions=False)
        assert verified.exit_code == 0, verified.output
        assert "intact and restores" in verified.output

        refused = runner.invoke(app, ["backup", "restore", str(folder)], catch_exceptions=False)
        assert refused.exit_code == 2
        assert "refused" in refused.output
        assert "--yes" in refused.output

        (folder / MANIFEST).write_text("{}")
        broken = runner.invoke(app, ["backup", "verify", str(folder)], catch_exceptions=False)
        assert broken.exit_code == 1
        assert f"{MANIFEST}: fields are missing" in broken.output


class TestListing:
    def test_the_api_lists_manifests_without_the_key(
        self, client: TestClient, container: Container, settings: Settings
    ) -> None:
        empty = client.get(f"/api/v1/workspaces/{WORKSPACE}/backups")
        assert empty.status_code == 200, empty.text
        assert empty.json() == {"directory": str(settings.resolved_backup_dir), "backups": []}
        _add(container)
        created = backups.create(settings)
        broken = settings.resolved_backup_dir / "obhut-backup-19700101T000000Z-broken"
        broken.mkdir()
        listed = client.get(f"/api/v1/workspaces/{WORKSPACE}/backups").json()["backups"]
        assert [b["folder"] for b in listed] == [str(created.path), str(broken)]
        found = listed[0]
        assert found["id"] == created.manifest.backup_id
        assert found["size"] == sum(f.stat().st_size for f in created.path.iterdir())
        assert {d["database"]: d["sha256"] for d in found["databases"]} == {
            d.database: d.sha256 for d in created.manifest.databases
        }
        assert "wrapped_key" not in json.dumps(found)
        assert created.manifest.wrapped_key not in json.dumps(listed)
        assert listed[1]["id"] is None
        assert "has no manifest.json" in listed[1]["problem"]

    def test_a_support_agent_may_not_list_them(self, client: TestClient, container: Container) -> None:
        token = signed_in_with_mfa(client, container, "agent", "support_agent")
        refused = client.get(f"/api/v1/workspaces/{WORKSPACE}/backups", headers=bearer(token))
        assert refused.status_code == 403
