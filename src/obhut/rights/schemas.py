"""What the rights endpoints take and return. No personal data in a request's summary: the details a
requester wrote are shown only to staff who may answer it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from obhut.rights.models import SubjectRequest
from obhut.rights.rules import Right


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str
    right: Right
    language: str = Field(default="de", pattern="^(de|en)$")
    details: dict[str, Any] | None = Field(
        default=None,
        description='rectification: {"fields": {"email": ...}}; objection: {"purposes": ["marketing"]} (default: all)',
    )


class CustomerRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    right: Right
    language: str = Field(default="de", pattern="^(de|en)$")
    details: dict[str, Any] | None = None


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str = Field(
        min_length=3, max_length=40, description="How the requester proved who they are: id-document, known-contact..."
    )


class ExtendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    months: int = Field(ge=1, le=2)
    reason: str = Field(min_length=10, max_length=2000, description="Told to the requester (Art. 12(3))")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=10, max_length=500, description="Without personal data; told to the requester")


class RequestOut(BaseModel):
    id: str
    customer_id: str
    right: Right
    status: str
    channel: str
    requested_by: str
    language: str
    received_at: datetime
    deadline: datetime
    extended: bool
    verified_at: datetime | None
    verification: str | None
    completed_at: datetime | None
    outcome: str
    certificate: str | None = Field(description="An erasure's signed certificate (compact JWS, Ed25519)")

    @classmethod
    def of(cls, row: SubjectRequest) -> RequestOut:
        return cls(
            id=row.request_id, customer_id=row.customer_id, right=Right(row.right), status=row.status,
            channel=row.channel, requested_by=row.requested_by, language=row.language, received_at=row.received_at,
            deadline=row.deadline, extended=row.extension_sealed is not None, verified_at=row.verified_at,
            verification=row.verification, completed_at=row.completed_at, outcome=row.outcome,
            certificate=row.certificate,
        )  # fmt: skip


class RequestList(BaseModel):
    requests: list[RequestOut]
