from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from obhut.kit.db import Base, UTCDateTime


class AdminToken(Base):
    """A bootstrap admin token. Only its SHA-256 is stored; the token itself is shown once."""

    __tablename__ = "access_admin_tokens"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)  # "*" = every workspace
    token_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"AdminToken({self.token_id!r}, {self.label!r})"
