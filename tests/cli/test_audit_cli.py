"""`obhut audit`: sequencing publishes each signed checkpoint to the configured file, and `verify` finds
tampering, also a truncation that took the newest checkpoints with it, by the published copies."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, select, update

from obhut.audit import notes, rules
from obhut.audit import service as audit
from obhut.audit.models import AuditCheckpoint, AuditEntry
from obhut.audit.service import Context, Event
from obhut.container import Container
from obhut.kit.db import unit_of_work
from tests.cli.conftest import CHECKPOINTS, DEFAULT, Obhut

CONTEXT = Context("staff:0190b3c2-0000-7000-8000-00000000000a", "support_agent", "192.0.2.7", "crm/1.0", "r-1")


def _entries(obhut: Obhut, container: Container, count: int) -> None:
    # The first command creates the default workspace; a token for another one leaves no entry in its log.
    assert obhut("admin", "token", "create", "--workspace", "acme").exit_code == 0
    with unit_of_work(container.sessions) as session:
        for n in range(count):
            event = Event(rules.action("api", "token", "create"), target=f"token:{n}")
            audit.record(session, None, DEFAULT, CONTEXT, event)


def test_sequence_publishes_checkpoints_and_verify_passes(obhut: Obhut, container: Container, tmp_path: Path) -> None:
    _entries(obhut, container, 3)
    sequenced = obhut("audit", "sequence")
    assert sequenced.exit_code == 0, sequenced.output
    assert "3 entries sequenced" in sequenced.output
    published = (tmp_path / CHECKPOINTS).read_text(encoding="utf-8")
    body, signatures = notes.parse_signed_note(published)
    assert notes.parse_checkpoint_body(body)[:2] == (rules.origin(DEFAULT), 3)
    assert signatures[0][0] == rules.origin(DEFAULT)
    verified = obhut("audit", "verify", "--checkpoints", str(tmp_path / CHECKPOINTS))
    assert verified.exit_code == 0, verified.output
    assert "ok: 3 entries, 1 checkpoints" in verified.output


def test_verify_reports_a_changed_entry_with_its_position(obhut: Obhut, container: Container) -> None:
    _entries(obhut, container, 4)
    assert obhut("audit", "sequence").exit_code == 0
    with unit_of_work(container.sessions) as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(target="token:forged"))
    result = obhut("audit", "verify")
    assert result.exit_code == 1
    assert "first bad position 2" in result.output
    assert "entry 2 was changed" in result.output


def test_a_truncation_with_its_checkpoints_is_caught_by_the_published_ones(
    obhut: Obhut, container: Container, tmp_path: Path
) -> None:
    _entries(obhut, container, 2)
    assert obhut("audit", "sequence").exit_code == 0
    _entries(obhut, container, 3)
    assert obhut("audit", "sequence").exit_code == 0
    published = tmp_path / CHECKPOINTS
    assert published.read_text(encoding="utf-8").count("\u2014 ") == 2  # two notes, one signature each
    with unit_of_work(container.sessions) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq >= 2))
        session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.size > 2))
    assert obhut("audit", "verify").exit_code == 0  # the database alone is consistent again
    result = obhut("audit", "verify", "--checkpoints", str(published))
    assert result.exit_code == 1
    assert "first bad position 2" in result.output
    assert "truncated" in result.output


def test_operator_commands_are_in_the_log(obhut: Obhut, container: Container, tmp_path: Path) -> None:
    assert obhut("admin", "token", "create").exit_code == 0
    with unit_of_work(container.sessions) as session:
        container.customers.create(session, DEFAULT, {"given_name": "Erika", "email": "erika@example.com"})
    assert obhut("customers", "export", "--out", str(tmp_path / "out.jsonl")).exit_code == 0
    assert obhut("keys", "rotate").exit_code == 0
    with container.sessions() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.count, AuditEntry.actor, AuditEntry.role).order_by(AuditEntry.at)
        ).all()
    assert [(r.action, r.count) for r in rows] == [
        ("cli:admin_token:create", 0),  # a token for every workspace: in each one's log (acme, default)
        ("cli:admin_token:create", 0),
        ("cli:customer:export", 1),
        ("cli:key:rotate", 0),
    ]
    assert all(r.actor.startswith("cli:") and r.role == "operator" for r in rows)


def test_prove_prints_checked_inclusion_and_consistency_proofs(obhut: Obhut, container: Container) -> None:
    _entries(obhut, container, 2)
    assert obhut("audit", "sequence").exit_code == 0
    _entries(obhut, container, 5)
    inclusion = obhut("audit", "prove", "--index", "1")
    assert inclusion.exit_code == 0, inclusion.output
    hashes, note = inclusion.stdout.split("\n\n", 1)
    assert len(hashes.split()) == 3  # a path of three hashes in a tree of seven
    assert notes.parse_checkpoint_body(notes.parse_signed_note(note)[0])[1] == 7
    consistency = obhut("audit", "prove", "--first", "2")
    assert consistency.exit_code == 0, consistency.output
    assert len(consistency.stdout.split("\n\n", 1)[0].split()) >= 1
    assert obhut("audit", "prove").exit_code == 2
