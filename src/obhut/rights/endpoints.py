"""Data-subject requests for staff: take one in for a customer, verify the requester, extend, reject,
answer it (rectify, erase, restrict, record an objection) and download an access export. Every step is in
the access log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session

from obhut.access.dependencies import CurrentPrincipal
from obhut.access.rules import Permission
from obhut.audit import rules as audit
from obhut.audit.dependencies import AuditTrail
from obhut.audit.service import Event
from obhut.consent.service import public_jwk
from obhut.container import container_of
from obhut.kit.web import DbSession
from obhut.rights.erasure import CERTIFICATE_KEY
from obhut.rights.models import SubjectRequest
from obhut.rights.rules import Right, Status
from obhut.rights.schemas import ExtendIn, RejectIn, RequestIn, RequestList, RequestOut, VerifyIn
from obhut.rights.service import RightsService
from obhut.vault.keyring import Keyring

router = APIRouter(prefix="/workspaces/{workspace_id}/requests", tags=["data-subject requests"])
ZIP = "application/zip"


def _rights(request: Request) -> RightsService:
    return container_of(request).rights


def _keyring(request: Request, session: Session, workspace_id: str) -> Keyring:
    return container_of(request).vault.open(session, workspace_id)


def step(trail: AuditTrail, verb: str, row: SubjectRequest, keyring: Keyring, outcome: str = "ok") -> None:
    """A request's step in the access log: `api:request:<verb>`, about its customer."""
    event = Event(
        audit.action("api", "request", verb), outcome, customer_id=row.customer_id, purpose="privacy_request",
        target=f"request:{row.request_id}",
    )  # fmt: skip
    trail.record(event, keyring)


@router.post("", status_code=status.HTTP_201_CREATED)
def open_request(
    workspace_id: str, body: RequestIn, request: Request, session: DbSession, principal: CurrentPrincipal,
    trail: AuditTrail,
) -> RequestOut:  # fmt: skip
    """Takes a request in on the customer's behalf; the deadline (one month) starts now."""
    principal.require(Permission.CUSTOMERS_WRITE)
    keyring = _keyring(request, session, workspace_id)
    row = _rights(request).open(
        session, keyring, body.customer_id, body.right, requested_by=principal.actor, language=body.language,
        details=body.details,
    )  # fmt: skip
    step(trail, "open", row, keyring)
    return RequestOut.of(row)


@router.get("")
def list_requests(
    workspace_id: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    state: Annotated[Status | None, Query(alias="status")] = None,
) -> RequestList:
    """The queue, soonest deadline first."""
    principal.require(Permission.RIGHTS_MANAGE)
    return RequestList(requests=[RequestOut.of(r) for r in _rights(request).listing(session, workspace_id, state)])


@router.get("/certificate-key")
def certificate_key(workspace_id: str, request: Request, session: DbSession) -> dict[str, list[dict[str, str]]]:
    """The public key (JWKS) that verifies this workspace's erasure certificates. Public by design."""
    return {"keys": [public_jwk(_keyring(request, session, workspace_id), CERTIFICATE_KEY)]}


@router.get("/{request_id}")
def read_request(
    workspace_id: str, request_id: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> RequestOut:
    principal.require(Permission.RIGHTS_MANAGE)
    return RequestOut.of(_rights(request).get(session, workspace_id, request_id))


@router.post("/{request_id}/verify")
def verify_request(
    workspace_id: str, request_id: str, body: VerifyIn, request: Request, session: DbSession,
    principal: CurrentPrincipal, trail: AuditTrail,
) -> RequestOut:  # fmt: skip
    """Records how the requester proved who they are; nothing is released before this."""
    principal.require(Permission.RIGHTS_MANAGE)
    rights = _rights(request)
    row = rights.verify(session, rights.get(session, workspace_id, request_id), principal.actor, body.method)
    step(trail, "verify", row, _keyring(request, session, workspace_id))
    return RequestOut.of(row)


@router.post("/{request_id}/extend")
def extend_request(
    workspace_id: str, request_id: str, body: ExtendIn, request: Request, session: DbSession,
    principal: CurrentPrincipal, trail: AuditTrail,
) -> RequestOut:  # fmt: skip
    """Moves the deadline by one or two months, once, with a reason the requester is told."""
    principal.require(Permission.RIGHTS_MANAGE)
    rights, keyring = _rights(request), _keyring(request, session, workspace_id)
    row = rights.get(session, workspace_id, request_id)
    rights.extend(session, keyring, row, body.months, body.reason)
    step(trail, "extend", row, keyring)
    return RequestOut.of(row)


@router.post("/{request_id}/reject")
def reject_request(
    workspace_id: str, request_id: str, body: RejectIn, request: Request, session: DbSession,
    principal: CurrentPrincipal, trail: AuditTrail,
) -> RequestOut:  # fmt: skip
    principal.require(Permission.RIGHTS_MANAGE)
    rights = _rights(request)
    row = rights.get(session, workspace_id, request_id)
    rights.reject(session, row, body.reason)
    step(trail, "reject", row, _keyring(request, session, workspace_id))
    return RequestOut.of(row)


@router.post("/{request_id}/complete")
def complete_request(
    workspace_id: str, request_id: str, request: Request, session: DbSession, principal: CurrentPrincipal,
    trail: AuditTrail,
) -> RequestOut:  # fmt: skip
    """Answers a verified request: rectifies, erases (with its certificate), restricts or records the
    objection. Erasure needs `customers:delete` as well."""
    principal.require(Permission.RIGHTS_MANAGE)
    rights, keyring = _rights(request), _keyring(request, session, workspace_id)
    row = rights.get(session, workspace_id, request_id)
    if row.right == Right.ERASURE:
        principal.require(Permission.CUSTOMERS_DELETE)
    step(trail, "complete", row, keyring)  # before an erasure: the entry is sealed with the customer's key
    return RequestOut.of(rights.complete(session, keyring, row, principal.actor))


@router.get("/{request_id}/export", response_class=Response, responses={200: {"content": {ZIP: {}}}})
def download_export(
    workspace_id: str, request_id: str, request: Request, session: DbSession, principal: CurrentPrincipal,
    trail: AuditTrail,
) -> Response:  # fmt: skip
    """The customer's export (ZIP: data.json, schema.json, report.html) for a verified access or
    portability request, to hand to the requester."""
    principal.require(Permission.RIGHTS_MANAGE)
    rights, keyring = _rights(request), _keyring(request, session, workspace_id)
    row = rights.get(session, workspace_id, request_id)
    bundle = rights.release_export(session, keyring, row)
    step(trail, "export", row, keyring)
    return Response(bundle, media_type=ZIP, headers=export_headers(row))


def export_headers(row: SubjectRequest) -> dict[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="export-{row.request_id}.zip"',
        "Cache-Control": "no-store",
    }
