"""Data-subject requests from the customer, through the signed link staff sent them (the one the preference
centre opens): holding the link is how they proved who they are, so their requests start verified. Only
they can download their export here, and only for their own requests."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from obhut.audit import rules as audit
from obhut.audit.dependencies import Trail, trail_for
from obhut.audit.handler import report
from obhut.audit.schemas import ReportEntry
from obhut.audit.service import Event
from obhut.consent import preferences
from obhut.consent.preference_endpoints import Token
from obhut.container import container_of
from obhut.customers.models import Customer
from obhut.kit.errors import NotFoundError
from obhut.kit.web import DbSession
from obhut.rights import erasure
from obhut.rights.endpoints import ZIP, export_headers, step
from obhut.rights.rules import Right
from obhut.rights.schemas import CustomerRequestIn, RequestList, RequestOut

router = APIRouter(tags=["data-subject requests"])
Language = Annotated[str | None, Query(pattern="^(en|de)$", description="Default: from Accept-Language")]


class KeptOut(BaseModel):
    what: str = Field(description="A data category an erasure would keep")
    why: str = Field(description="The legal duty or hold that keeps it")
    until: datetime | None


AUTO_COMPLETE = (Right.RESTRICTION, Right.OBJECTION)  # nothing to weigh: the customer's word is enough


def _trail(request: Request, session: DbSession, workspace_id: str) -> Trail:
    return trail_for(request, session, workspace_id, preferences.CUSTOMER, preferences.CUSTOMER)


@router.post("/preferences/{token}/requests", status_code=status.HTTP_201_CREATED)
def customer_request(token: Token, body: CustomerRequestIn, request: Request, session: DbSession) -> RequestOut:
    """Asks for access, a copy to take elsewhere, a correction, erasure, restriction or an objection. A
    restriction or objection takes effect at once; the others are answered by staff within a month."""
    container = container_of(request)
    keyring, link = preferences.open_link(container.vault, session, token)
    row = container.rights.open(
        session, keyring, link.customer_id, body.right, requested_by=preferences.CUSTOMER, language=body.language,
        details=body.details, verified_by="signed-link",
    )  # fmt: skip
    trail = _trail(request, session, link.workspace_id)
    step(trail, "open", row, keyring)
    if body.right in AUTO_COMPLETE:
        container.rights.complete(session, keyring, row, preferences.CUSTOMER)
        step(trail, "complete", row, keyring)
    return RequestOut.of(row)


@router.get("/preferences/{token}/requests")
def customer_requests(token: Token, request: Request, session: DbSession) -> RequestList:
    container = container_of(request)
    _, link = preferences.open_link(container.vault, session, token)
    mine = container.rights.listing(session, link.workspace_id, customer_id=link.customer_id)
    return RequestList(requests=[RequestOut.of(r) for r in mine])


@router.get(
    "/preferences/{token}/requests/{request_id}/export",
    response_class=Response,
    responses={200: {"content": {ZIP: {}}}},
)
def customer_export(token: Token, request_id: str, request: Request, session: DbSession) -> Response:
    """Your data: a ZIP with data.json (machine-readable), schema.json and report.html, in your language."""
    container = container_of(request)
    keyring, link = preferences.open_link(container.vault, session, token)
    row = container.rights.get(session, link.workspace_id, request_id)
    if row.customer_id != link.customer_id:
        raise NotFoundError(f"no request {request_id} in workspace '{link.workspace_id}'")
    bundle = container.rights.release_export(session, keyring, row)
    step(_trail(request, session, link.workspace_id), "export", row, keyring)
    return Response(bundle, media_type=ZIP, headers=export_headers(row))


@router.get("/preferences/{token}/access")
def who_looked(token: Token, request: Request, session: DbSession, lang: Language = None) -> list[ReportEntry]:
    """Who looked at your data: every access-log entry about you, in words you can read."""
    container = container_of(request)
    keyring, link = preferences.open_link(container.vault, session, token)
    language = lang or audit.language_of(request.headers.get("accept-language", ""))
    found = [ReportEntry(**entry) for entry in report(session, keyring, link.customer_id, language)]
    event = Event(audit.action("api", "audit", "subject-report"), customer_id=link.customer_id)
    _trail(request, session, link.workspace_id).record(event, keyring)
    return found


@router.get("/preferences/{token}/erasure-preview")
def erasure_preview(token: Token, request: Request, session: DbSession) -> list[KeptOut]:
    """What erasing your data would have to keep, and why (tax and commercial records, a legal hold)."""
    container = container_of(request)
    _, link = preferences.open_link(container.vault, session, token)
    customer = session.get(Customer, (link.workspace_id, link.customer_id))
    if customer is None or erasure.erased_already(session, customer):
        raise NotFoundError("this customer's data was erased already")
    return [KeptOut(what=k.what, why=k.why, until=k.until) for k in erasure.preview(session, customer)]
