from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from obhut.cli.main import app
from obhut.kit.settings import Settings

HEADER = (
    "external_ref,given_name,family_name,birth_date,email,phone,"
    "address_line1,address_line2,postal_code,city,country,iban,card_number,notes"
)
ROWS = [
    "K-1,Anna,Beispiel,1980-01-02,anna@example.com,+49 30 1234567,Weg 1,,10115,Berlin,DE,DE89 3704 0044 0532 0130 00,,",
    "K-2,Ben,Beispiel,1981-02-03,ben-at-example.com,+49 30 1234568,Weg 2,,10115,Berlin,DE,,,",
    "K-3,Clara,Probe,1982-03-04,clara@example.com,,Weg 3,,10115,Berlin,DE,,4111 1111 1111 1111,",
    "K-4,Dora,Probe,1983-04-05,dora@example.com,,,,,,,DE89 3704 0044 0532 0130 99,,",
    "K-5,Emil,Muster,2999-01-01,emil@example.com,,,,,,,,,Kunde seit 2020",
]


@pytest.fixture
def obhut(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "OBHUT_DATA_DIR": str(settings.data_dir),
        "OBHUT_DATABASE_URL": settings.resolved_database_url,
        "OBHUT_KEYSTORE_URL": settings.resolved_keystore_url,
        "OBHUT_KEY_FILE": str(settings.resolved_key_file),
        "OBHUT_KEY_SHARDS": "8",
    }.items():
        monkeypatch.setenv(name, value)
    return CliRunner()


def _export(obhut: CliRunner, tmp_path: Path) -> list[dict[str, object]]:
    out = tmp_path / "export.jsonl"
    result = obhut.invoke(app, ["customers", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    return [json.loads(line) for line in out.read_text().splitlines()]


class TestImport:
    def test_good_rows_land_bad_rows_are_reported_and_rerun_adds_nothing(
        self, obhut: CliRunner, tmp_path: Path
    ) -> None:
        source = tmp_path / "customers.csv"
        source.write_text("\n".join([HEADER, *ROWS]) + "\n")
        first = obhut.invoke(app, ["customers", "import", str(source)])
        assert first.exit_code == 2, first.output
        assert "imported 2, already present 0, rejected 3" in first.output
        rejects = (tmp_path / "customers.csv.rejects.csv").read_text()
        assert rejects.splitlines()[0] == "line,field,reason"
        assert {line.split(",")[0] for line in rejects.splitlines()[1:]} == {"3", "5", "6"}
        assert "email is not a valid email address" in rejects
        assert "ben-at-example.com" not in rejects
        assert "0130 99" not in rejects

        again = obhut.invoke(app, ["customers", "import", str(source)])
        assert "imported 0, already present 2, rejected 3" in again.output
        exported = _export(obhut, tmp_path)
        assert sorted(c["email"] for c in exported) == ["anna@example.com", "clara@example.com"]
        clara = next(c for c in exported if c["given_name"] == "Clara")
        assert clara["card"]["last4"] == "1111"  # type: ignore[index]

    def test_json_lines_with_a_broken_line(self, obhut: CliRunner, tmp_path: Path) -> None:
        source = tmp_path / "customers.jsonl"
        good = {
            "external_ref": "J-1",
            "family_name": "Muster",
            "email": "j1@example.com",
            "card_number": "4111111111111111",
        }
        source.write_text(json.dumps(good) + "\n{not json\n" + json.dumps({**good, "external_ref": "J-2"}) + "\n")
        result = obhut.invoke(app, ["customers", "import", str(source)])
        assert "imported 2, already present 0, rejected 1" in result.output
        assert "2,,not valid JSON" in (tmp_path / "customers.jsonl.rejects.csv").read_text()


class TestShredAndKeys:
    def _import(self, obhut: CliRunner, tmp_path: Path) -> list[dict[str, object]]:
        source = tmp_path / "ok.csv"
        source.write_text("\n".join([HEADER, ROWS[0], ROWS[2]]) + "\n")
        assert obhut.invoke(app, ["customers", "import", str(source)]).exit_code == 0
        return _export(obhut, tmp_path)

    def test_shred_removes_the_customer_from_exports(self, obhut: CliRunner, tmp_path: Path) -> None:
        anna, clara = sorted(self._import(obhut, tmp_path), key=lambda c: str(c["given_name"]))
        result = obhut.invoke(app, ["customers", "shred", str(anna["id"])])
        assert result.exit_code == 0, result.output
        assert [c["id"] for c in _export(obhut, tmp_path)] == [clara["id"]]

    def test_rotate_revoke_restore(self, obhut: CliRunner, tmp_path: Path) -> None:
        self._import(obhut, tmp_path)
        rotated = obhut.invoke(app, ["keys", "rotate"])
        assert "2 data keys re-wrapped" in rotated.output, rotated.output
        status = obhut.invoke(app, ["keys", "status"]).output
        assert "retired" in status
        assert "active" in status
        assert len(_export(obhut, tmp_path)) == 2
        assert obhut.invoke(app, ["keys", "revoke", "--yes"]).exit_code == 0
        refused = obhut.invoke(app, ["customers", "export"])
        assert refused.exit_code == 1
        assert "obhut-default-v1" in refused.output
        assert "revoked on" in refused.output
        assert obhut.invoke(app, ["keys", "restore"]).exit_code == 0
        assert len(_export(obhut, tmp_path)) == 2

    def test_admin_token_is_printed_once_and_hashed(self, obhut: CliRunner) -> None:
        result = obhut.invoke(app, ["admin", "token", "create", "--label", "ops"])
        token = result.stdout.strip().splitlines()[-1]
        assert token.startswith("obhut_adm_")
        assert len(token) > 40
