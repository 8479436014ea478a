"""The transactional outbox: events written with the change they report, positions given after commit by
one sequencer, a cursor per destination, webhook retries and dead letters, and the registered recipients."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from obhut.kit.db import Base, Blob, UTCDateTime


class OutboxEvent(Base):
    """No personal data: ids, purpose keys, kinds and times. `position` is set by the sequencer once the
    writing transaction has committed, so a cursor never skips an event that committed late."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_position", "workspace_id", "position", unique=True),
        Index(
            "ix_outbox_events_waiting",
            "workspace_id",
            "occurred_at",
            postgresql_where=text("position IS NULL"),
            sqlite_where=text("position IS NULL"),
        ),
    )

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the idempotency key
    position: Mapped[int | None] = mapped_column(Integer)
    topic: Mapped[str] = mapped_column(String(100))
    customer_id: Mapped[str | None] = mapped_column(String(36))
    purpose_key: Mapped[str | None] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[str] = mapped_column(Text)  # JSON object


class OutboxHead(Base):
    """How many events of a workspace are sequenced: the sequencer serialises on this row."""

    __tablename__ = "outbox_heads"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    length: Mapped[int] = mapped_column(Integer)


class OutboxCursor(Base):
    """The next position a destination is to receive, and when it may be tried again after a failure."""

    __tablename__ = "outbox_cursors"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    destination: Mapped[str] = mapped_column(String(60), primary_key=True)  # "nats" or "webhook:<id>"
    position: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(200))


class OutboxDelivery(Base):
    """A webhook delivery that failed: retried with backoff, then dead (until an admin replays it)."""

    __tablename__ = "outbox_deliveries"
    __table_args__ = (Index("ix_outbox_deliveries_due", "state", "next_attempt_at"),)

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    destination: Mapped[str] = mapped_column(String(60), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    state: Mapped[str] = mapped_column(String(10))  # retrying | dead
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutboxRecipient(Base):
    """A processor or third party: what it receives (event types), for which purposes, and where."""

    __tablename__ = "outbox_recipients"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    recipient_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))  # processor | third_party
    url: Mapped[str] = mapped_column(String(2000))
    topics: Mapped[str] = mapped_column(String(400))  # space-separated prefixes
    purposes: Mapped[str] = mapped_column(String(800))  # space-separated purpose keys
    categories: Mapped[str] = mapped_column(String(200))  # the data categories it receives, as documented
    secret_sealed: Mapped[bytes] = mapped_column(Blob())  # the Standard Webhooks signing secret
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
