from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from obhut.kit.db import Base, Blob, UTCDateTime


class Customer(Base):
    """A customer profile. Every personal field is vault ciphertext bound to this row and column; the
    `*_index` columns are blind indexes (keyed hashes) that allow exact lookups and reveal only equality."""

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("workspace_id", "external_ref_index"),
        Index(None, "workspace_id", "email_index"),
        Index(None, "workspace_id", "phone_index"),
        Index(None, "workspace_id", "iban_index"),
        Index(None, "workspace_id", "card_index"),
        Index(None, "workspace_id", "family_name_index"),
        Index(
            None,
            "workspace_id",
            "sensitive_ref",
            sqlite_where=text("sensitive_ref IS NOT NULL"),
            postgresql_where=text("sensitive_ref IS NOT NULL"),
        ),
        # the erased rows (kept for a legal duty), which a retention survey counts out of its windows
        Index(
            "ix_customers_erased",
            "workspace_id",
            "id",
            sqlite_where=text("erased_at IS NOT NULL"),
            postgresql_where=text("erased_at IS NOT NULL"),
        ),
    )

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)

    external_ref: Mapped[bytes | None] = mapped_column(Blob())
    given_name: Mapped[bytes | None] = mapped_column(Blob())
    family_name: Mapped[bytes | None] = mapped_column(Blob())
    birth_date: Mapped[bytes | None] = mapped_column(Blob())
    email: Mapped[bytes | None] = mapped_column(Blob())
    phone: Mapped[bytes | None] = mapped_column(Blob())
    postal_address: Mapped[bytes | None] = mapped_column(Blob())
    iban: Mapped[bytes | None] = mapped_column(Blob())
    card: Mapped[bytes | None] = mapped_column(Blob())
    notes: Mapped[bytes | None] = mapped_column(Blob())

    external_ref_index: Mapped[bytes | None] = mapped_column(Blob())
    email_index: Mapped[bytes | None] = mapped_column(Blob())
    phone_index: Mapped[bytes | None] = mapped_column(Blob())
    iban_index: Mapped[bytes | None] = mapped_column(Blob())
    card_index: Mapped[bytes | None] = mapped_column(Blob())
    family_name_index: Mapped[bytes | None] = mapped_column(Blob())
    sensitive_ref: Mapped[bytes | None] = mapped_column(Blob())  # the record in the sensitive store, if it has one

    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    contract_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # retention can count from it

    def __repr__(self) -> str:
        return f"Customer({self.workspace_id!r}, {self.id!r})"
