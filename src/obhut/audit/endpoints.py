"""The access log over HTTP: entries by staff member, customer, category, purpose and time; the newest signed
checkpoint; inclusion and consistency proofs (RFC 9162) a client can check on its own. Needs `oversight:read`."""

from __future__ import annotations

import base64
import csv
import io
from datetime import datetime
from email.utils import format_datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from obhut.access.dependencies import CurrentPrincipal
from obhut.access.rules import Permission
from obhut.audit import repository, rules, service, tasks
from obhut.audit.dependencies import AuditTrail
from obhut.audit.handler import report
from obhut.audit.models import AuditEntry
from obhut.audit.schemas import EntryFilter, ReportEntry
from obhut.audit.service import Event
from obhut.container import container_of
from obhut.kit.clock import now
from obhut.kit.errors import NotFoundError
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
    target: str | None = Field(description="What else was acted on: staff:<id>, token:<id>, alert:<id>, policy:<n>")
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
            target=row.target,
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


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _sequenced(request: Request, workspace_id: str) -> None:
    """Entries still waiting are placed first, so a reader sees everything committed before the request."""
    container = container_of(request)
    service.sequence_all(container.sessions, container.vault, workspace_id, container.checkpoint_sinks)


Wanted = Annotated[EntryFilter, Query()]


def _subject(request: Request, session: DbSession, workspace_id: str, wanted: EntryFilter) -> str | None:
    if wanted.customer_id is None:
        return wanted.customer
    return service.pseudonym(container_of(request).vault.open(session, workspace_id), wanted.customer_id)


@router.get("/entries")
def list_entries(
    workspace_id: str, wanted: Wanted, request: Request, session: DbSession, principal: CurrentPrincipal
) -> list[EntryOut]:
    """Entries by staff member, customer, data category, purpose, action and time, newest first."""
    principal.require(Permission.OVERSIGHT)
    query = repository.entries(workspace_id, wanted, _subject(request, session, workspace_id, wanted))
    return [EntryOut.of(row) for row in session.scalars(query)]


def _cell(value: object) -> object:
    """Text a client chose (user agent, request id) must not become a formula in an auditor's spreadsheet."""
    if isinstance(value, str) and value[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + value
    return value


@router.get("/entries.csv", response_class=PlainTextResponse)
def export_entries(
    workspace_id: str, wanted: Wanted, request: Request, session: DbSession, principal: CurrentPrincipal
) -> PlainTextResponse:
    """The same entries as CSV (a spreadsheet, an auditor's tools)."""
    principal.require(Permission.OVERSIGHT)
    query = repository.entries(workspace_id, wanted, _subject(request, session, workspace_id, wanted))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(EntryOut.model_fields))
    writer.writeheader()
    for row in session.scalars(query):
        record = EntryOut.of(row).model_dump(mode="json")
        record["categories"] = " ".join(record["categories"])
        record["returned"] = " ".join(f"{k}={v}" for k, v in record["returned"].items())
        writer.writerow({k: _cell(v) for k, v in record.items()})
    headers = {"Content-Disposition": f'attachment; filename="access-log-{workspace_id}.csv"'}
    return PlainTextResponse(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/entries/{seq}")
def read_entry(
    workspace_id: str,
    seq: Annotated[int, Path(ge=0, description="The entry's position in the tree")],
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> EntryOut:
    """One entry, by its position in the tree."""
    principal.require(Permission.OVERSIGHT)
    _sequenced(request, workspace_id)
    row = session.scalar(repository.at_position(workspace_id, seq))
    if row is None:
        raise NotFoundError(f"no entry at position {seq}")
    return EntryOut.of(row)


@router.get("/checkpoint", response_class=PlainTextResponse)
def checkpoint(
    workspace_id: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> PlainTextResponse:
    """The newest signed checkpoint, as text (C2SP tlog-checkpoint in a signed note); Last-Modified says when
    it was signed."""
    principal.require(Permission.OVERSIGHT)
    _sequenced(request, workspace_id)
    found = service.checkpoint_at(session, workspace_id, None)
    return PlainTextResponse(found.note, headers={"Last-Modified": format_datetime(found.created_at, usegmt=True)})


class VerifyOut(BaseModel):
    ok: bool
    size: int = Field(description="Entries in the tree, each rebuilt from its stored content")
    checkpoints: int = Field(description="Signed checkpoints checked")
    first_bad: int | None = Field(description="The first position that is not as it was signed; null when ok")
    problems: list[str]


@router.post("/verify")
def verify_log(
    workspace_id: str, request: Request, session: DbSession, principal: CurrentPrincipal, trail: AuditTrail
) -> VerifyOut:
    """Rebuilds the tree from the stored entries and checks it against every signed checkpoint, as
    `obhut audit verify` does (that one can also check exported checkpoints). Recorded with its outcome."""
    principal.require(Permission.OVERSIGHT)
    _sequenced(request, workspace_id)
    found = tasks.verify(session, container_of(request).vault.open(session, workspace_id), workspace_id)
    outcome = "ok" if found.ok else "failed"
    trail.record(Event(rules.action("api", "audit", "verify"), outcome, target=f"size:{found.entries}"))
    return VerifyOut(
        ok=found.ok, size=found.entries, checkpoints=found.checkpoints, first_bad=found.first_bad,
        problems=found.problems,
    )  # fmt: skip


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


class AccessReport(BaseModel):
    customer_id: str
    language: str
    generated_at: datetime
    entries: list[ReportEntry]


@router.get("/customers/{customer_id}/report")
def access_report(
    workspace_id: str,
    customer_id: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
    lang: Annotated[str | None, Query(pattern="^(en|de)$", description="Default: from Accept-Language")] = None,
) -> AccessReport:
    """Who looked at this customer's data: every entry about them, in words fit to hand to the customer
    (part of a data-subject access request). Needs `oversight:read`; the report itself is recorded."""
    principal.require(Permission.OVERSIGHT)
    language = lang or rules.language_of(request.headers.get("accept-language", ""))
    keyring = container_of(request).vault.open(session, workspace_id)
    found = [ReportEntry(**entry) for entry in report(session, keyring, customer_id, language)]
    trail.record(Event(rules.action("api", "audit", "subject-report"), customer_id=customer_id), keyring)
    return AccessReport(customer_id=customer_id, language=language, generated_at=now(), entries=found)
