"""Retention policies per data category, legal holds, and the purge runs with their deletion proofs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from obhut.kit.db import Base, UTCDateTime


class RetentionPolicy(Base):
    __tablename__ = "retention_policies"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    category: Mapped[str] = mapped_column(String(20), primary_key=True)
    days: Mapped[int] = mapped_column(Integer)
    anchor: Mapped[str] = mapped_column(String(20))  # collection | last_activity | contract_end
    action: Mapped[str] = mapped_column(String(20))  # delete | anonymise
    legal_duty: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(80))


class LegalHold(Base):
    """Stops deletion (purges and erasures) for a customer, a category, or both, until released."""

    __tablename__ = "retention_holds"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    hold_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(36))
    category: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(200))  # a case reference, not a person's details
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(80))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PurgeRun(Base):
    """One purge: where it has got to (it resumes from `cursor`), what it did, and its deletion proof (a
    SHA-256 chain over the ids and actions it took, recorded in the access log when it finishes)."""

    __tablename__ = "retention_purges"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cursor: Mapped[str] = mapped_column(String(36), default="")  # the last customer id examined
    examined: Mapped[int] = mapped_column(Integer, default=0)
    erased: Mapped[int] = mapped_column(Integer, default=0)
    cleared: Mapped[int] = mapped_column(Integer, default=0)  # customers with some categories cleared
    held: Mapped[int] = mapped_column(Integer, default=0)
    proof: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text, default="")  # JSON: per category and action, how many
