"""Shapes of the access log's endpoints (and of "who looked at my data", wherever it is answered)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class EntryFilter(BaseModel):
    """Which entries: every given condition must hold."""

    model_config = ConfigDict(extra="forbid")

    actor: str | None = Field(None, max_length=80, description="staff:<id>, token:<id> or admin:<id>")
    customer: str | None = Field(None, max_length=64, description="A customer's pseudonym, as entries show it")
    customer_id: str | None = Field(None, max_length=36, description="A customer's id (turned into the pseudonym)")
    category: str | None = Field(None, max_length=40, description="identity, contact, financial, notes")
    purpose: str | None = Field(None, max_length=40)
    action: str | None = Field(None, max_length=80, description="e.g. api:customer:search")
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(100, ge=1, le=10_000)


class ReportEntry(BaseModel):
    at: datetime
    who: str = Field(description="The role of whoever acted (staff are not named)")
    what: str
    data: list[str] = Field(description="Which kinds of data were involved")
    why: str | None = Field(description="The stated purpose")
    shown: str
