"""The access log over HTTP: entries by staff member, customer, category, purpose and time; the newest signed
checkpoint; inclusion and consistency proofs (RFC 9162) a client can check on its own. Needs `oversight:read`."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from obhut.access.dependencies import CurrentPrincipal
from obhut.access.rules import Permission
from obhut.audit import service
from obhut.audit.models import AuditEntry
from obhut.container import Container
from obhut.kit.web import DbSession

router = APIRouter(prefix="/workspaces/{workspace_id}/audit", tags=["audit"])


class EntryOut(BaseModel):
    seq: int | None = Field(description="Position in the tree; null until the sequencer has placed it")
    at: datetime
    actor: str
    role: str
    action: str
    outcome: str
    customer: str | None = Field(description="The customer's pseudonym (the same in every entry about them)")
    categories: list[str]
    returned: dict[str, str]
    purpose: str | None
    ticket: str | None
    search_kind: str | None
    count: int
    address: str
    user_agent: str
    request_id: str

    @classmethod
    def of(cls, row: AuditEntry) -> EntryOut:
        returned = dict(item.split("=", 1) for item in row.returned.split()) if row.returned else {}
        return cls(
            seq=row.seq,
            at=row.at,
            actor=row.actor,
            role=row.role,
            action=row.action,
            outcome=row.outcome,
            customer=row.subject,
            categories=row.categories.split(),
            returned=returned,
            purpose=row.purpose,
            ticket=row.ticket,
            search_kind=row.search_kind,
            count=row.count,
            address=row.address,
            user_agent=row.user_agent,
            request_id=row.request_id,
        )


class ProofOut(BaseModel):
    index: int | None = None
    first: int | None = None
    size: int
    root: str = Field(description="base64, as in the checkpoint")
    proof: list[str] = Field(description="base64 hashes, RFC 9162 order")
    checkpoint: str = Field(description="The signed checkpoint (C2SP signed note) the proof leads to")


def _container(request: Request) -> Container:
    found: Container = request.app.state.container
    return found


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _sequenced(request: Request, workspace_id: str) -> None:
    """Entries still waiting are placed first, so a reader sees everything committed before the request."""
    container = _container(request)
    service.sequence_all(container.sessions, container.vault, workspace_id, container.checkpoint_sinks)


@router.get("/entries")
def list_entries(
    workspace_id: str,
    session: DbSession,
    principal: CurrentPrincipal,
    actor: Annotated[str | None, Query(max_length=80, description="staff:<id>, token:<id> or admin:<id>")] = None,
    customer: Annotated[str | None, Query(max_length=64, description="A customer's pseudonym")] = None,
    category: Annotated[str | None, Query(max_length=40)] = None,
    purpose: Annotated[str | None, Query(max_length=40)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EntryOut]:
    principal.require(Permission.OVERSIGHT)
    query = select(AuditEntry).where(AuditEntry.workspace_id == workspace_id)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    if customer is not None:
        query = query.where(AuditEntry.subject == customer)
    if category is not None:
        query = query.where(AuditEntry.categories.contains(category))
    if purpose is not None:
        query = query.where(AuditEntry.purpose == purpose)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    rows = session.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.entry_id).limit(limit))
    return [EntryOut.of(row) for row in rows]


@router.get("/checkpoint", response_class=PlainTextResponse)
def checkpoint(workspace_id: str, request: Request, session: DbSession, principal: CurrentPrincipal) -> str:
    """The newest signed checkpoint, as text (C2SP tlog-checkpoint in a signed note)."""
    principal.require(Permission.OVERSIGHT)
    _sequenced(request, workspace_id)
    return service.checkpoint_at(session, workspace_id, None).note


@router.get("/proofs/inclusion")
def inclusion_proof(
    workspace_id: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    index: Annotated[int, Query(ge=0)],
    size: Annotated[int | None, Query(ge=1, description="A checkpoint's size; the newest without")] = None,
) -> ProofOut:
    principal.require(Permission.OVERSIGHT)
    _sequenced(request, workspace_id)
    head, proof = service.inclusion(session, workspace_id, index, size)
    return ProofOut(
        index=index, size=head.size, root=_b64(head.root), proof=[_b64(h) for h in proof], checkpoint=head.note
    )


@router.get("/proofs/consistency")
def consistency_proof(
    workspace_id: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    first: Annotated[int, Query(ge=1)],
    second: Annotated[int | None, Query(ge=1)] = None,
) -> ProofOut:
    principal.require(Permission.OVERSIGHT)
    _sequenced(request, workspace_id)
    older, newer, proof = service.consistency(session, workspace_id, first, second)
    return ProofOut(
        first=older.size, size=newer.size, root=_b64(newer.root), proof=[_b64(h) for h in proof], checkpoint=newer.note
    )
