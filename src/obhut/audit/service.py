"""Recording access, sequencing the log into a Merkle tree with signed checkpoints, and proofs over it.

`record` adds an entry in the caller's transaction (no action without its entry and no entry without its
action) and takes no lock: entries wait unsequenced. `sequence` then gives a batch of them positions, stores
their leaf hashes and the completed subtree nodes, and signs a checkpoint, all in one transaction of its own."""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Table, bindparam, select, text
from sqlalchemy.orm import Session, sessionmaker

from obhut.audit import merkle, notes, rules
from obhut.audit.models import AuditCheckpoint, AuditEntry, AuditNode
from obhut.audit.ports import CheckpointSink
from obhut.kit import bulk
from obhut.kit.clock import now
from obhut.kit.db import after_commit, unit_of_work
from obhut.kit.errors import ConflictError, NotFoundError
from obhut.kit.ids import new_ids
from obhut.vault.errors import SubjectShreddedError
from obhut.vault.keyring import Keyring
from obhut.vault.service import Vault

BATCH = 5000
_ENTRIES: Table = AuditEntry.__table__  # type: ignore[assignment]
_NODES: Table = AuditNode.__table__  # type: ignore[assignment]
_PLACE_LITE = "UPDATE audit_entries SET seq = ?, leaf_hash = ? WHERE workspace_id = ? AND entry_id = ? AND seq IS NULL"


@dataclass(frozen=True)
class Context:
    """Who acted, and from where: the same for every entry of one request."""

    actor: str
    role: str
    address: str = field(default="", repr=False)  # a person's network address and browser: not for reprs
    user_agent: str = field(default="", repr=False)
    request_id: str = ""


@dataclass(frozen=True)
class Event:
    action: str  # source:subject:action
    outcome: str = "ok"
    customer_id: str | None = None
    target: str | None = None
    categories: Sequence[str] = ()
    requested: Sequence[str] = ()
    returned: Mapping[str, str] = field(default_factory=dict)  # field -> revealed | masked | withheld
    purpose: str | None = None
    ticket: str | None = None
    search_kind: str | None = None
    search_term: str | None = None  # hashed with a workspace key before it is stored; never kept
    count: int = 0

    def __repr__(self) -> str:
        return f"Event({self.action!r}, {self.outcome!r})"


SUBJECT_KEY = "audit-subject"  # the derived key of the log's pseudonyms


def pseudonym(keyring: Keyring, customer_id: str) -> str:
    """The customer as the log names them: a keyed hash, the same in every entry about them."""
    return _pseudonym(keyring.derived_key(SUBJECT_KEY), customer_id)


def _pseudonym(key: bytes, customer_id: str) -> str:
    return hmac.digest(key, customer_id.encode(), "sha256").hex()


def term_hash(keyring: Keyring, term: str) -> str:
    normalised = "".join(term.split()).casefold()
    return hmac.digest(keyring.derived_key("audit-search"), normalised.encode(), "sha256").hex()


def _sealed(keyring: Keyring, customer_id: str) -> bytes | None:
    """The customer's id under their own data key: unreadable once they are erased, still hashed in the tree."""
    try:
        return keyring.subject(customer_id).seal("audit", customer_id.encode())
    except SubjectShreddedError:
        return None


def entry_rows(
    keyring: Keyring | None,
    workspace_id: str,
    context: Context,
    events: Sequence[Event],
    at: datetime | None = None,
    erasing: Collection[str] = (),
) -> list[dict[str, Any]]:
    """The stored form of events at one moment (`at`, else now), canonical bodies included. What the entries
    share (the time and the context) is encoded once for them all. `erasing`: customers whose data keys the
    caller's transaction destroys: their entries keep the pseudonym and no sealed id, which nothing could
    ever open (so their keys need not be opened for it)."""
    shared: dict[str, Any] = {
        "at": at or now(),
        "actor": context.actor,
        "role": context.role,
        "address": context.address[:64],
        "user_agent": context.user_agent[:300],
        "request_id": context.request_id[:64],
    }
    at_text = rules.time_text(shared["at"])
    fixed = shared | {"workspace_id": workspace_id, "seq": None, "leaf_hash": None}
    rows = []
    subject_key = b""  # the pseudonyms' key, derived once for all the entries
    if keyring is not None and any(event.customer_id for event in events):
        subject_key = keyring.derived_key(SUBJECT_KEY)
    for event, entry_id in zip(events, new_ids(len(events)), strict=True):
        values = _event_columns(keyring, subject_key, event, event.customer_id not in erasing) | fixed
        values["entry_id"] = entry_id
        values["body"] = rules.body_bytes(values, at_text)
        rows.append(values)
    return rows


def _event_columns(keyring: Keyring | None, subject_key: bytes, event: Event, seal: bool) -> dict[str, Any]:
    if event.outcome not in rules.OUTCOMES:
        raise ValueError(f"unknown outcome {event.outcome!r}")
    needs_keys = event.customer_id is not None or event.search_term is not None
    if needs_keys and keyring is None:
        raise ValueError("an event about a customer or a search needs the workspace's keyring")
    subject = sealed = None
    if keyring is not None and event.customer_id:
        subject = _pseudonym(subject_key, event.customer_id)
        sealed = _sealed(keyring, event.customer_id) if seal else None
    return {
        "action": event.action,
        "outcome": event.outcome,
        "subject": subject,
        "target": event.target,
        "categories": " ".join(sorted(set(event.categories))),
        "requested": " ".join(event.requested),
        "returned": " ".join(f"{k}={v}" for k, v in sorted(event.returned.items())),
        "purpose": event.purpose,
        "ticket": event.ticket,
        "search_kind": event.search_kind,
        "search_hash": term_hash(keyring, event.search_term) if keyring is not None and event.search_term else None,
        "count": event.count,
        "sealed": sealed,
    }


def record(session: Session, keyring: Keyring | None, workspace_id: str, context: Context, event: Event) -> None:
    """Adds the entry to the caller's transaction. A keyring is needed for events about a customer or a search."""
    record_many(session, keyring, workspace_id, context, [event])


def record_many(
    session: Session,
    keyring: Keyring | None,
    workspace_id: str,
    context: Context,
    events: Sequence[Event],
    erasing: Collection[str] = (),
) -> None:
    """Several events at the same moment (one request's, or a batch's): one timestamp, one bulk insert.
    `erasing`: as for `entry_rows`."""
    bulk.insert_rows(session, _ENTRIES, entry_rows(keyring, workspace_id, context, events, erasing=erasing))


def head(session: Session, workspace_id: str, *, lock: bool = False) -> AuditCheckpoint | None:
    query = (
        select(AuditCheckpoint)
        .where(AuditCheckpoint.workspace_id == workspace_id)
        .order_by(AuditCheckpoint.size.desc())
        .limit(1)
    )
    return session.scalar(query.with_for_update() if lock else query)


def frontier(checkpoint: AuditCheckpoint | None) -> merkle.CompactRange:
    if checkpoint is None:
        return merkle.CompactRange()
    return merkle.CompactRange(checkpoint.size, [bytes.fromhex(h) for h in checkpoint.frontier.split()])


def sign(keyring: Keyring, workspace_id: str, size: int, root: bytes) -> str:
    """The checkpoint as a C2SP signed note, signed with the workspace's Ed25519 checkpoint key."""
    signer = keyring.signer(rules.SIGNER)
    name = rules.origin(workspace_id)
    body = notes.checkpoint_body(name, size, root)
    return notes.signed_note(body, name, notes.note_key_id(name, signer.public_key), signer.sign(body.encode()))


def sequence(
    sessions: sessionmaker[Session],
    vault: Vault,
    workspace_id: str,
    sinks: Sequence[CheckpointSink] = (),
    batch: int = BATCH,
) -> int:
    """Integrates up to `batch` waiting entries and signs a checkpoint; returns how many. Safe to run from
    several processes: they serialise on the newest checkpoint (a lost race is a unique-key conflict).
    The new checkpoint goes to every sink once its transaction has committed."""
    with unit_of_work(sessions) as session:
        latest = head(session, workspace_id, lock=True)
        waiting = (
            session.connection()
            .execute(  # Core rows: the ORM would cost as much as the hashing
                select(AuditEntry.entry_id, AuditEntry.body)
                .where(AuditEntry.workspace_id == workspace_id, AuditEntry.seq.is_(None))
                .order_by(AuditEntry.at, AuditEntry.entry_id)
                .limit(batch)
            )
            .all()
        )
        if not waiting:
            return 0
        keyring = vault.open(session, workspace_id)
        tree = frontier(latest)
        start = tree.size
        hashes = rules.leaf_hashes(start, [bytes(body) for _, body in waiting])
        nodes = tree.append_all(hashes)  # the leaves themselves are kept with their entries
        leaves = [
            (entry_id, start + n, leaf) for n, ((entry_id, _), leaf) in enumerate(zip(waiting, hashes, strict=True))
        ]
        _store(session, workspace_id, leaves, nodes)
        root = tree.root()
        note = sign(keyring, workspace_id, tree.size, root)
        session.add(
            AuditCheckpoint(
                workspace_id=workspace_id,
                size=tree.size,
                root=root,
                note=note,
                frontier=" ".join(h.hex() for h in tree.hashes),
                created_at=now(),
            )
        )
        for sink in sinks:
            after_commit(session, partial(sink.publish, workspace_id, note))
        return len(waiting)


# Positions are consecutive, so the batch travels as one comma-joined text of ids and one bytea of hashes:
# psycopg escapes every element of a bytea or text array in Python, which would cost more than the hashing.
# The entries are looked up among the waiting ones up to the batch's last, which the waiting entries' index
# gives without a scan of the rest of the backlog or of the log.
_PLACE_PG = text(
    "UPDATE audit_entries SET seq = :first + v.n - 1, "
    "leaf_hash = substring(CAST(:h AS bytea) FROM CAST((v.n - 1) * 32 + 1 AS integer) FOR 32) "
    "FROM unnest(string_to_array(:e, ',')) WITH ORDINALITY AS v(e, n) "
    "WHERE audit_entries.workspace_id = :w AND audit_entries.seq IS NULL "
    "AND (audit_entries.at, audit_entries.entry_id) <= "
    "(SELECT l.at, l.entry_id FROM audit_entries AS l WHERE l.workspace_id = :w AND l.entry_id = :last) "
    "AND audit_entries.entry_id = v.e"
)


def _store(
    session: Session, workspace_id: str, leaves: list[tuple[str, int, bytes]], nodes: list[tuple[int, int, bytes]]
) -> None:
    """Positions and leaf hashes of a batch (on PostgreSQL in one statement: one per row would cost a round
    trip each), and its new nodes (COPY or multi-row INSERT). A batch that did not find every one of its
    entries still waiting is a conflict: nothing of it is kept, and no checkpoint is signed over it."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        ids, hashes = ",".join(x[0] for x in leaves), b"".join(x[2] for x in leaves)
        parameters = {"w": workspace_id, "first": leaves[0][1], "e": ids, "h": hashes, "last": leaves[-1][0]}
        placed = connection.execute(_PLACE_PG, parameters).rowcount
    else:  # SQLite runs in process: row by row costs no round trip; driver SQL skips SQLAlchemy's per-row work
        placed = connection.exec_driver_sql(_PLACE_LITE, [(q, h, workspace_id, e) for e, q, h in leaves]).rowcount
    if placed != len(leaves):
        raise ConflictError(f"only {placed} of {len(leaves)} entries were still waiting to be sequenced")
    rows = [
        {"workspace_id": workspace_id, "level": level, "index": index, "hash": digest} for level, index, digest in nodes
    ]
    bulk.insert_rows(session, _NODES, rows)


def sequence_all(
    sessions: sessionmaker[Session], vault: Vault, workspace_id: str, sinks: Sequence[CheckpointSink] = ()
) -> int:
    total = 0
    while done := sequence(sessions, vault, workspace_id, sinks):
        total += done
    return total


def waiting_workspaces(session: Session) -> list[str]:
    query = select(AuditEntry.workspace_id).where(AuditEntry.seq.is_(None)).distinct()
    return list(session.scalars(query))


# --- proofs -------------------------------------------------------------------------------------------------
def node_getter(session: Session, workspace_id: str) -> merkle.NodeGetter:
    """Subtree hashes for proofs, one indexed Core lookup each (a proof needs about 2 log2(n) of them)."""
    connection = session.connection()
    leaf = select(_ENTRIES.c.leaf_hash).where(_ENTRIES.c.workspace_id == workspace_id, _ENTRIES.c.seq == bindparam("i"))
    node = select(_NODES.c.hash).where(
        _NODES.c.workspace_id == workspace_id, _NODES.c.level == bindparam("l"), _NODES.c.index == bindparam("i")
    )

    def get(level: int, index: int) -> bytes:
        if level == 0:
            found = connection.execute(leaf, {"i": index}).scalar()
        else:
            found = connection.execute(node, {"l": level, "i": index}).scalar()
        if found is None:
            raise ConflictError(f"the log's node ({level}, {index}) is missing: run 'obhut audit verify'")
        return bytes(found)

    return get


def checkpoint_at(session: Session, workspace_id: str, size: int | None) -> AuditCheckpoint:
    found = head(session, workspace_id) if size is None else session.get(AuditCheckpoint, (workspace_id, size))
    if found is None:
        raise NotFoundError(f"no checkpoint of size {size}" if size is not None else "the log has no checkpoint yet")
    return found


def inclusion(session: Session, workspace_id: str, index: int, size: int | None) -> tuple[AuditCheckpoint, list[bytes]]:
    checkpoint = checkpoint_at(session, workspace_id, size)
    if not 0 <= index < checkpoint.size:
        raise NotFoundError(f"entry {index} is not in the tree of size {checkpoint.size}")
    return checkpoint, merkle.inclusion_proof(index, checkpoint.size, node_getter(session, workspace_id))


def consistency(
    session: Session, workspace_id: str, first: int, second: int | None
) -> tuple[AuditCheckpoint, AuditCheckpoint, list[bytes]]:
    older, newer = checkpoint_at(session, workspace_id, first), checkpoint_at(session, workspace_id, second)
    if not 0 < older.size <= newer.size:
        raise NotFoundError("a consistency proof needs 0 < first <= second")
    proof = merkle.consistency_proof(older.size, newer.size, node_getter(session, workspace_id))
    return older, newer, proof
