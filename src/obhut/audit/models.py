"""The access log's tables. Entries are written unsequenced in the transaction of their action; the
sequencer gives them positions, leaf hashes and tree nodes, and signs a checkpoint over them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from obhut.kit.db import Base, Blob, UTCDateTime


def _where(condition: str) -> dict[str, Any]:
    """A partial index's condition, on both databases."""
    return {"postgresql_where": text(condition), "sqlite_where": text(condition)}


class AuditEntry(Base):
    """One recorded event. No plaintext personal data: the customer appears as a keyed pseudonym, a search
    term as its kind and a keyed hash; the customer's id is sealed under the customer's own data key."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_subject", "workspace_id", "subject"),
        Index("ix_audit_entries_actor", "workspace_id", "actor", "at"),
        # Positions, unique among the sequenced entries. What the sequencer takes next, in its order: it
        # shrinks as entries are sequenced, so the sequencer never sorts the backlog nor scans what is done.
        # Each index holds only its side of `seq IS NULL`, so that a planner without statistics for a table
        # that just grew cannot take the positions for the backlog (and sort the whole log instead).
        Index("ix_audit_entries_seq", "workspace_id", "seq", unique=True, **_where("seq IS NOT NULL")),
        Index("ix_audit_entries_waiting", "workspace_id", "at", "entry_id", **_where("seq IS NULL")),
    )

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int | None] = mapped_column(Integer)  # position in the tree; None until sequenced
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(80))  # staff:<id>, token:<id>, admin:<id>, or "anonymous"
    role: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(80))  # source:subject:action, e.g. api:customer:read
    outcome: Mapped[str] = mapped_column(String(20))  # revealed, masked, denied, ok, failed
    subject: Mapped[str | None] = mapped_column(String(64))  # the customer's pseudonym
    target: Mapped[str | None] = mapped_column(String(80))  # what else was acted on: staff:<id>, token:<id>, policy:3
    categories: Mapped[str] = mapped_column(String(200), default="")  # space-separated
    requested: Mapped[str] = mapped_column(Text, default="")  # fields asked for
    returned: Mapped[str] = mapped_column(Text, default="")  # field=revealed|masked|withheld
    purpose: Mapped[str | None] = mapped_column(String(40))
    ticket: Mapped[str | None] = mapped_column(String(100))
    search_kind: Mapped[str | None] = mapped_column(String(40))
    search_hash: Mapped[str | None] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=0)  # customers returned or exported
    address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    request_id: Mapped[str] = mapped_column(String(64), default="")
    sealed: Mapped[bytes | None] = mapped_column(Blob())  # the customer's id, under the customer's data key
    body: Mapped[bytes] = mapped_column(Blob())  # the canonical bytes of the columns above; hashed into the tree
    leaf_hash: Mapped[bytes | None] = mapped_column(Blob())

    def __repr__(self) -> str:
        return f"AuditEntry({self.seq!r}, {self.action!r}, {self.outcome!r})"


class AuditNode(Base):
    """The hash of a complete subtree of 2**level leaves starting at leaf index * 2**level (level >= 1):
    an inclusion or consistency proof is a handful of these."""

    __tablename__ = "audit_nodes"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(Blob())


class AuditCheckpoint(Base):
    """A signed tree head (C2SP tlog-checkpoint as a signed note) and the tree's right edge at that size."""

    __tablename__ = "audit_checkpoints"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(Blob())
    note: Mapped[str] = mapped_column(Text)
    frontier: Mapped[str] = mapped_column(Text)  # hex hashes of the compact range, space-separated
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditAlert(Base):
    """A staff member's day that the detectors found suspicious, and what the reviewers made of it."""

    __tablename__ = "audit_alerts"
    __table_args__ = (UniqueConstraint("workspace_id", "actor", "day"),)

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    actor: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(40))
    day: Mapped[str] = mapped_column(String(10))  # ISO date, UTC
    severity: Mapped[str] = mapped_column(String(10))  # low, medium, high
    score: Mapped[int] = mapped_column(Integer)  # 0-100
    factors: Mapped[str] = mapped_column(Text)  # JSON list, largest contribution first
    detectors: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="open")  # open, acknowledged, resolved
    reason_sealed: Mapped[bytes | None] = mapped_column(Blob())  # why it was resolved; may name people
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str | None] = mapped_column(String(80))
