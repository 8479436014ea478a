"""Data-subject requests and their steps. What a requester wrote (new values for a rectification, a reason)
is sealed under the customer's data key; the rest holds no personal data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from obhut.kit.db import Base, Blob, UTCDateTime


class SubjectRequest(Base):
    __tablename__ = "rights_requests"
    __table_args__ = (
        Index("ix_rights_requests_customer", "workspace_id", "customer_id"),
        Index("ix_rights_requests_deadline", "workspace_id", "status", "deadline"),
    )

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    right: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))  # customer (signed link) | staff
    requested_by: Mapped[str] = mapped_column(String(80))  # customer, or staff:<id> on their behalf
    language: Mapped[str] = mapped_column(String(5))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    extension_sealed: Mapped[bytes | None] = mapped_column(Blob())  # why the deadline moved
    details_sealed: Mapped[bytes | None] = mapped_column(Blob())  # JSON: new values, purposes, a reason
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verified_by: Mapped[str | None] = mapped_column(String(80))
    verification: Mapped[str | None] = mapped_column(String(40))  # signed-link | id-document | ...
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(Text, default="")  # what was done, in words without personal data
    certificate: Mapped[str | None] = mapped_column(Text)  # an erasure's signed certificate (compact JWS)

    def __repr__(self) -> str:
        return f"SubjectRequest({self.request_id!r}, {self.right}, {self.status})"
