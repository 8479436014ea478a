"""The purpose catalogue, notices, the consent ledger (append-only, chained per customer) and the state
derived from it. A customer's source address and user agent are sealed under the customer's data key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from obhut.kit.db import Base, Blob, UTCDateTime


class ConsentPurpose(Base):
    __tablename__ = "consent_purposes"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    title_en: Mapped[str] = mapped_column(String(200))
    title_de: Mapped[str] = mapped_column(String(200))
    description_en: Mapped[str] = mapped_column(Text)
    description_de: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(String(30))
    categories: Mapped[str] = mapped_column(String(200))  # space-separated data categories
    recipients: Mapped[str] = mapped_column(Text, default="")  # who receives the data, as shown to customers
    retention: Mapped[str] = mapped_column(String(200), default="")  # the retention rule it links to
    sale_or_sharing: Mapped[bool] = mapped_column(Boolean, default=False)  # Global Privacy Control objects
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConsentNotice(Base):
    """What a customer is shown for a purpose, per version and language; its text and hash are kept."""

    __tablename__ = "consent_notices"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    purpose_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[str] = mapped_column(String(20), primary_key=True)
    language: Mapped[str] = mapped_column(String(5), primary_key=True)
    major: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConsentEvent(Base):
    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_customer", "workspace_id", "customer_id", "position"),)

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    position: Mapped[int] = mapped_column(Integer)  # the event's place in the customer's chain, from 0
    purpose_key: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    channel: Mapped[str] = mapped_column(String(20))
    notice_version: Mapped[str | None] = mapped_column(String(20))
    notice_hash: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(5))
    actor: Mapped[str] = mapped_column(String(80))  # "customer" or staff:<id> acting for them
    source_sealed: Mapped[bytes | None] = mapped_column(Blob())  # address and user agent
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ConsentChain(Base):
    """The head of a customer's chain: appends serialise on this row."""

    __tablename__ = "consent_chains"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    length: Mapped[int] = mapped_column(Integer)
    head: Mapped[str] = mapped_column(String(64))


class ConsentState(Base):
    """The newest event per customer and purpose: what a check reads (one primary-key lookup)."""

    __tablename__ = "consent_states"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    purpose_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notice_major: Mapped[int | None] = mapped_column(Integer)
    event_id: Mapped[str] = mapped_column(String(36))
