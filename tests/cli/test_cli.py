"""The command line end to end, on SQLite and PostgreSQL: each command builds its own container from
OBHUT_* variables that point at the test's databases, as an operator's shell would."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from typer.testing import Result

from obhut.access import service as access
from obhut.api.app import create_app
from obhut.audit.models import AuditEntry
from obhut.container import Container
from obhut.customers.models import Customer
from obhut.kit.db import unit_of_work
from obhut.vault.models import DataKey, KeyVersion
from obhut.workspaces.models import Workspace
from tests.cli.conftest import DEFAULT, Obhut

HEADER = (
    "external_ref,given_name,family_name,birth_date,email,phone,address_line1,address_line2,postal_code,city,"
    "country,iban,card_number,notes"
)
GOOD_ROWS = [
    (
        "K-101,Jane,Musterfrau,1985-04-12,Jane.Musterfrau@EXAMPLE.com,030 1234567,Beispielweg 1,Hinterhaus,10115,"
        "Berlin,DE,DE89 3704 0044 0532 0130 00,4111 1111 1111 1111,Prefers email"
    ),
    "K-103,Erika,Musterfrau,,erika@example.com,+49 40 7654321,,,,,,,,",
    'K-105,Lieschen,Müller,,lieschen@example.com,,,,,,,,,"Notes, with a comma"',
]
BAD_EMAIL = "max@@example.com"
BAD_IBAN = "DE00 3704 0044 0532 0130 00"
MIXED_CSV = "\n".join(
    [
        HEADER,
        GOOD_ROWS[0],
        f"K-102,Max,Mustermann,1980-01-01,{BAD_EMAIL},,,,,,,,,",  # line 3
        GOOD_ROWS[1],
        f"K-104,Otto,Normalverbraucher,,otto@example.com,,,,,,,{BAD_IBAN},,",  # line 5
        GOOD_ROWS[2],
        "",
    ]
)


def _count(container: Container, model: type[Customer | DataKey]) -> int:
    with unit_of_work(container.sessions) as session:
        return session.scalar(select(func.count()).select_from(model).where(model.workspace_id == DEFAULT)) or 0


def _export(obhut: Obhut, tmp_path: Path) -> list[dict[str, Any]]:
    out = tmp_path / "export.jsonl"
    result = obhut("customers", "export", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert f"exported {len(rows)} customers" in result.output
    return rows


def _import(obhut: Obhut, path: Path, content: str, exit_code: int) -> Result:
    path.write_text(content, encoding="utf-8")
    result = obhut("customers", "import", str(path))
    assert result.exit_code == exit_code, result.output
    return result


def _token_id(container: Container, token: str) -> str:
    with unit_of_work(container.sessions) as session:
        return access.authenticate(session, token, {}).actor.removeprefix("admin:")


class TestAdminToken:
    def test_prints_a_token_that_authenticates(self, obhut: Obhut, container: Container) -> None:
        result = obhut("admin", "token", "create", "--label", "ci")
        assert result.exit_code == 0, result.output
        token = result.stdout.strip()
        assert re.fullmatch(r"obhut_adm_[A-Za-z0-9_-]{43}", token), "stdout holds the token alone"
        assert "shown only now" in result.stderr
        with unit_of_work(container.sessions) as session:
            principal = access.authenticate(session, token, {})
            assert (principal.role, principal.actor.startswith("admin:")) == ("owner", True)
        api = TestClient(create_app(container=container))
        assert api.get("/api/v1/workspaces/acme/keys", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert api.get("/api/v1/workspaces/acme/keys", headers={"Authorization": "Bearer x"}).status_code == 401

    def test_a_token_limited_to_one_workspace(self, obhut: Obhut, container: Container) -> None:
        token = obhut("admin", "token", "create", "--workspace", "acme").stdout.strip()
        with unit_of_work(container.sessions) as session:
            principal = access.authenticate(session, token, {})
            assert (principal.covers("acme"), principal.covers(DEFAULT)) == (True, False)

    def test_creation_and_revocation_are_in_the_log_of_each_workspace_they_cover(
        self, obhut: Obhut, container: Container
    ) -> None:
        def logged(verb: str) -> list[tuple[str, str | None, str]]:
            with unit_of_work(container.sessions) as session:
                query = select(AuditEntry.workspace_id, AuditEntry.target, AuditEntry.actor).where(
                    AuditEntry.action == f"cli:admin_token:{verb}"
                )
                return sorted((w, t, a) for w, t, a in session.execute(query))

        obhut("admin", "token", "create")  # creates the default workspace: two from now on
        everywhere = _token_id(container, obhut("admin", "token", "create", "--label", "all").stdout.strip())
        assert [(w, t) for w, t, _ in logged("create") if t == f"token:{everywhere}"] == [
            ("acme", f"token:{everywhere}"), (DEFAULT, f"token:{everywhere}")]  # fmt: skip
        only_acme = _token_id(container, obhut("admin", "token", "create", "--workspace", "acme").stdout.strip())
        assert [w for w, t, _ in logged("create") if t == f"token:{only_acme}"] == ["acme"]
        assert all(actor.startswith("cli:") for _, _, actor in logged("create"))
        assert obhut("admin", "token", "revoke", only_acme).exit_code == 0
        assert logged("revoke") == [("acme", f"token:{only_acme}", logged("create")[0][2])]

    def test_first_use_creates_the_default_workspace(self, obhut: Obhut, container: Container) -> None:
        assert obhut("admin", "token", "create").exit_code == 0
        with unit_of_work(container.sessions) as session:
            workspace = session.get(Workspace, DEFAULT)
            assert workspace is not None
            assert workspace.default_region == "DE"


class TestCsvImport:
    def test_good_rows_are_committed_and_bad_ones_reported(
        self, obhut: Obhut, container: Container, tmp_path: Path
    ) -> None:
        source = tmp_path / "customers.csv"
        result = _import(obhut, source, MIXED_CSV, exit_code=2)
        assert "imported 3, already present 0, rejected 2" in result.output
        rejects = source.with_name("customers.csv.rejects.csv")
        assert str(rejects) in result.output.replace("\n", "")
        assert rejects.stat().st_mode & 0o777 == 0o600
        with rejects.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows == [
            ["line", "field", "reason"],
            ["3", "email", "email is not a valid email address"],
            ["5", "iban", "iban is not a valid IBAN: the check digits do not match (a typo?)"],
        ]
        for text in (rejects.read_text(encoding="utf-8"), result.output):
            for value in (BAD_EMAIL, BAD_IBAN, BAD_IBAN.replace(" ", ""), "Mustermann", "Normalverbraucher"):
                assert value not in text
        assert (_count(container, Customer), _count(container, DataKey)) == (3, 3)
        assert sorted(r["external_ref"] for r in _export(obhut, tmp_path)) == ["K-101", "K-103", "K-105"]

    def test_running_the_same_file_again_adds_nothing(self, obhut: Obhut, container: Container, tmp_path: Path) -> None:
        source = tmp_path / "customers.csv"
        _import(obhut, source, MIXED_CSV, exit_code=2)
        again = obhut("customers", "import", str(source))
        assert again.exit_code == 2
        assert "imported 0, already present 3, rejected 2" in again.output
        assert (_count(container, Customer), _count(container, DataKey)) == (3, 3)

    def test_a_clean_file_exits_zero_and_leaves_no_rejects_file(self, obhut: Obhut, tmp_path: Path) -> None:
        source = tmp_path / "clean.csv"
        result = _import(obhut, source, "\n".join([HEADER, *GOOD_ROWS, ""]), exit_code=0)
        assert "imported 3, already present 0, rejected 0" in result.output
        assert not source.with_name("clean.csv.rejects.csv").exists()


class TestJsonLinesImport:
    def test_malformed_lines_are_reported_by_number(self, obhut: Obhut, container: Container, tmp_path: Path) -> None:
        lines = [
            json.dumps({"external_ref": "J-1", "family_name": "Musterfrau", "card_number": "4111 1111 1111 1111"}),
            '{"external_ref": "J-2", "family_name": ',
            json.dumps({"external_ref": "J-3", "family_name": "Beispiel", "phone": "030 1234567"}),
            "[1, 2]",
            "",
            json.dumps({"external_ref": "J-6", "family_name": "Schuh", "shoe_size": "42"}),
        ]
        source = tmp_path / "customers.jsonl"
        result = _import(obhut, source, "\n".join(lines) + "\n", exit_code=2)
        assert "imported 2, already present 0, rejected 3" in result.output
        with source.with_name("customers.jsonl.rejects.csv").open(encoding="utf-8", newline="") as handle:
            rejects = list(csv.reader(handle))[1:]
        assert rejects == [
            ["2", "", "not valid JSON"],
            ["4", "", "not a JSON object"],
            ["6", "shoe_size", "is not a customer field"],
        ]
        exported = {r["external_ref"]: r for r in _export(obhut, tmp_path)}
        assert set(exported) == {"J-1", "J-3"}
        assert exported["J-1"]["card"]["brand"] == "visa"
        assert exported["J-3"]["phone"] == "+49301234567"
        assert _count(container, Customer) == 2


class TestExport:
    def test_writes_every_customer_decrypted_to_a_private_file(self, obhut: Obhut, tmp_path: Path) -> None:
        _import(obhut, tmp_path / "in.csv", "\n".join([HEADER, *GOOD_ROWS, ""]), exit_code=0)
        rows = _export(obhut, tmp_path)
        assert (tmp_path / "export.jsonl").stat().st_mode & 0o777 == 0o600
        jane = next(r for r in rows if r["external_ref"] == "K-101")
        assert {k: jane[k] for k in ("given_name", "family_name", "birth_date", "email", "phone", "iban")} == {
            "given_name": "Jane",
            "family_name": "Musterfrau",
            "birth_date": "1985-04-12",
            "email": "Jane.Musterfrau@example.com",
            "phone": "+49301234567",
            "iban": "DE89370400440532013000",
        }
        assert jane["postal_address"] == {
            "line1": "Beispielweg 1",
            "line2": "Hinterhaus",
            "postal_code": "10115",
            "city": "Berlin",
            "country": "DE",
        }
        assert (jane["card"]["brand"], jane["card"]["last4"]) == ("visa", "1111")
        assert "4111111111111111" not in (tmp_path / "export.jsonl").read_text(encoding="utf-8")
        assert {r["notes"] for r in rows} == {"Prefers email", None, "Notes, with a comma"}

    def test_a_shredded_customer_is_no_longer_exported(
        self, obhut: Obhut, container: Container, tmp_path: Path
    ) -> None:
        _import(obhut, tmp_path / "in.csv", "\n".join([HEADER, *GOOD_ROWS, ""]), exit_code=0)
        victim = next(r["id"] for r in _export(obhut, tmp_path) if r["external_ref"] == "K-103")
        result = obhut("customers", "shred", victim)
        assert result.exit_code == 0, result.output
        assert f"customer {victim} erased at" in result.output
        remaining = _export(obhut, tmp_path)
        assert sorted(r["external_ref"] for r in remaining) == ["K-101", "K-105"]
        assert victim not in (tmp_path / "export.jsonl").read_text(encoding="utf-8")
        assert (_count(container, Customer), _count(container, DataKey)) == (3, 2)

    def test_reindex_fills_the_family_name_index_of_customers_stored_before_it(
        self, obhut: Obhut, container: Container, tmp_path: Path
    ) -> None:
        _import(obhut, tmp_path / "in.csv", "\n".join([HEADER, *GOOD_ROWS, ""]), exit_code=0)
        with unit_of_work(container.sessions) as session:
            session.execute(update(Customer).values(family_name_index=None))  # as before the upgrade
        result = obhut("customers", "reindex")
        assert result.exit_code == 0, result.output
        assert "indexed 3 customers" in result.output
        with unit_of_work(container.sessions) as session:
            indexes = session.scalars(select(Customer.family_name_index)).all()
        assert len(indexes) == 3
        assert all(indexes)
        assert len(set(indexes)) == 2  # two Musterfraus, one Müller: equal names, equal index values
        assert "every customer is indexed already" in obhut("customers", "reindex").output

    def test_shredding_an_unknown_customer_fails_clearly(self, obhut: Obhut) -> None:
        result = obhut("customers", "shred", "01a20820-31cc-781b-a170-b63d3397b604")
        assert result.exit_code == 1
        assert "no customer 01a20820-31cc-781b-a170-b63d3397b604" in result.output


class TestKeys:
    @pytest.fixture(autouse=True)
    def _customers(self, obhut: Obhut, tmp_path: Path) -> None:
        _import(obhut, tmp_path / "in.csv", "\n".join([HEADER, *GOOD_ROWS, ""]), exit_code=0)

    @staticmethod
    def _row(output: str, key_ref: str) -> list[str]:
        line = next(line for line in output.splitlines() if key_ref in line)
        return [cell.strip() for cell in line.strip("│ ").split("│")]

    def test_status_lists_each_version_with_its_data_keys(self, obhut: Obhut) -> None:
        result = obhut("keys", "status")
        assert result.exit_code == 0, result.output
        assert self._row(result.output, "obhut-default-v1")[:6] == [
            "1",
            "obhut-default-v1",
            "local",
            "generated",
            "active",
            "3",
        ]

    def test_rotate_moves_every_data_key_and_keeps_customers_readable(
        self, obhut: Obhut, container: Container, tmp_path: Path
    ) -> None:
        before = _export(obhut, tmp_path)
        result = obhut("keys", "rotate", "--batch-size", "2")
        assert result.exit_code == 0, result.output
        assert "v[1] -> v2, 3 data keys re-wrapped" in result.output
        with unit_of_work(container.sessions) as session:
            versions = session.scalars(select(DataKey.key_version).where(DataKey.workspace_id == DEFAULT)).all()
            states = dict(
                session.execute(
                    select(KeyVersion.version, KeyVersion.state).where(KeyVersion.workspace_id == DEFAULT)
                ).all()
            )
        assert sorted(versions) == [2, 2, 2]
        assert states == {1: "retired", 2: "active"}
        status = obhut("keys", "status").output
        assert self._row(status, "obhut-default-v2")[4:6] == ["active", "3"]
        assert self._row(status, "obhut-default-v1")[4:6] == ["retired", "0"]
        assert _export(obhut, tmp_path) == before

    def test_revoke_locks_the_data_until_restore(self, obhut: Obhut, tmp_path: Path) -> None:
        declined = obhut("keys", "revoke", stdin="n\n")
        assert declined.exit_code == 1
        assert "Aborted" in declined.output
        assert len(_export(obhut, tmp_path)) == 3

        revoked = obhut("keys", "revoke", "--yes")
        assert revoked.exit_code == 0, revoked.output
        assert "revoked obhut-default-v1" in revoked.output
        for args in (("customers", "export", "--out", str(tmp_path / "x.jsonl")), ("customers", "export")):
            failed = obhut(*args)
            assert failed.exit_code == 1
            message = " ".join(failed.output.split())  # rich wraps long lines
            assert "error: key 'obhut-default-v1' of workspace 'default' was revoked on" in message
            assert "('obhut keys restore')" in message
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", self._row(obhut("keys", "status").output, "default-v1")[7])

        restored = obhut("keys", "restore")
        assert restored.exit_code == 0, restored.output
        assert "restored obhut-default-v1" in restored.output
        assert sorted(r["external_ref"] for r in _export(obhut, tmp_path)) == ["K-101", "K-103", "K-105"]


class TestStaff:
    def test_create_an_owner_who_can_then_sign_in(self, obhut: Obhut, container: Container) -> None:
        secret = "a long enough passphrase"
        result = obhut("staff", "create", "owner@example.com", "--workspace", "acme", stdin=f"{secret}\n{secret}\n")
        assert result.exit_code == 0, result.output
        assert secret not in result.output.split("Repeat for confirmation:")[-1]
        listed = obhut("staff", "list", "--workspace", "acme")
        assert "owner@example.com" in listed.output
        assert "owner" in listed.output
        api = TestClient(create_app(container=container))
        login = api.post(
            "/api/v1/workspaces/acme/auth/login", json={"username": "owner@example.com", "password": secret}
        )
        assert login.status_code == 200, login.text
        assert login.json()["mfa_required"] is True  # an owner reveals everything: a second factor comes first

    def test_a_short_password_is_refused_with_the_rule(self, obhut: Obhut) -> None:
        result = obhut("staff", "create", "x@example.com", "--workspace", "acme", stdin="short\nshort\n")
        assert result.exit_code != 0
        assert "at least 12 characters" in result.output
