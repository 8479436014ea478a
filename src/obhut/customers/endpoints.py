"""Customer endpoints. Every response with personal data is built from a `Plan` (the access decision for
this caller and purpose): the architecture tests fail for an endpoint that returns customers without one."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from obhut.access.dependencies import CurrentPrincipal, Plan, policies
from obhut.access.rules import Permission
from obhut.audit import rules as audit
from obhut.audit.dependencies import AuditTrail, record_apart
from obhut.audit.service import Event
from obhut.consent import restrictions
from obhut.consent import service as consent
from obhut.container import container_of
from obhut.customers.models import Customer
from obhut.customers.schemas import CustomerFields, CustomerOut, CustomerPage, Erased, Lookup, LookupResult
from obhut.customers.service import CustomerService
from obhut.kit.errors import ForbiddenError
from obhut.kit.web import DbSession
from obhut.rights import erasure
from obhut.vault.keyring import Keyring

router = APIRouter(prefix="/workspaces/{workspace_id}/customers", tags=["customers"])


class BreakGlassIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str
    justification: str = Field(min_length=20, max_length=2000, description="Why policy must be exceeded")


def _keyring(request: Request, session: DbSession, workspace_id: str) -> Keyring:
    """The request's keyring (the vault opens it once per transaction), for the read and its log entry."""
    return container_of(request).vault.open(session, workspace_id)


def _service(request: Request) -> CustomerService:
    return container_of(request).customers


@router.post("", status_code=status.HTTP_201_CREATED)
def create_customer(
    workspace_id: str,
    body: CustomerFields,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    plan: Plan,
    trail: AuditTrail,
) -> CustomerOut:
    """Creates a customer; the reply shows it as the caller's role may see it (masked without a purpose)."""
    principal.require(Permission.CUSTOMERS_WRITE)
    record = _service(request).create(session, workspace_id, body.supplied())
    keyring = _keyring(request, session, workspace_id)
    view = _service(request).view(session, workspace_id, record.id, plan, keyring)
    trail.viewed("create", plan, [(view.id, view.disclosure)], keyring=keyring)
    return CustomerOut.of(view)


@router.get("")
def list_customers(
    workspace_id: str,
    request: Request,
    session: DbSession,
    plan: Plan,
    trail: AuditTrail,
    after: Annotated[str, Query(max_length=64, description="The last id of the page before")] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> CustomerPage:
    """Customers in id order, a page at a time; masked unless a purpose reveals more. Every one listed is
    recorded in the access log, as a read is."""
    keyring = _keyring(request, session, workspace_id)
    views = _service(request).browse(session, workspace_id, after, limit, plan, keyring)
    trail.viewed("list", plan, [(v.id, v.disclosure) for v in views], keyring=keyring)
    more = views[-1].id if len(views) == limit else None
    return CustomerPage(customers=[CustomerOut.of(v) for v in views], next_after=more)


@router.get("/{customer_id}")
def read_customer(
    workspace_id: str, customer_id: str, request: Request, session: DbSession, plan: Plan, trail: AuditTrail
) -> CustomerOut:
    """Without `purpose`, values are masked; with one, each field is revealed, masked or withheld by policy."""
    try:
        consent.enforce(session, workspace_id, customer_id, plan.purpose)
    except consent.ConsentRequiredError:
        _service(request).ensure_live(session, workspace_id, customer_id)  # unknown (404) or erased (410) first
        raise
    view = _service(request).view(session, workspace_id, customer_id, plan)  # opens the keys with the row
    trail.viewed("read", plan, [(view.id, view.disclosure)], keyring=_keyring(request, session, workspace_id))
    return CustomerOut.of(view)


@router.patch("/{customer_id}")
def update_customer(
    workspace_id: str,
    customer_id: str,
    body: CustomerFields,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    plan: Plan,
    trail: AuditTrail,
) -> CustomerOut:
    """Fields present in the body are set; `null` clears one; absent fields stay as they are."""
    principal.require(Permission.CUSTOMERS_WRITE)
    _service(request).update(session, workspace_id, customer_id, body.supplied())
    keyring = _keyring(request, session, workspace_id)
    view = _service(request).view(session, workspace_id, customer_id, plan, keyring)
    trail.viewed("update", plan, [(view.id, view.disclosure)], keyring=keyring)
    return CustomerOut.of(view)


def _erase(request: Request, session: DbSession, workspace_id: str, customer_id: str) -> Erased:
    """Erasure through every domain's handler and the erasure ledger, as a data-subject request does."""
    keyring = _keyring(request, session, workspace_id)
    rights = container_of(request).rights
    certificate = erasure.erase(session, keyring, rights.registry, rights.ledger, customer_id)
    customer = session.get(Customer, (workspace_id, customer_id))
    erased_at = customer.erased_at if customer is not None and customer.erased_at else None
    kept = [f"{k['what']}: {k['why']}" for k in certificate.claims["kept"] if erased_at is None]
    stamp = erased_at or datetime.fromisoformat(certificate.claims["erased_at"])
    return Erased(id=customer_id, erased_at=stamp, kept=kept, certificate=certificate.token)


@router.delete("/{customer_id}", status_code=status.HTTP_204_NO_CONTENT, responses={200: {"model": Erased}})
def delete_customer(
    workspace_id: str,
    customer_id: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
) -> Response:
    """Erases the customer everywhere and removes the row (204). Where a retention duty or legal hold keeps
    some of their data, the row stays, restricted, and the answer (200) says what was kept and why."""
    principal.require(Permission.CUSTOMERS_DELETE)
    trail.record(Event(audit.action("api", "customer", "delete"), customer_id=customer_id))
    erased = _erase(request, session, workspace_id, customer_id)
    if erased.kept:
        return Response(erased.model_dump_json(), media_type="application/json")
    _service(request).remove_row(session, workspace_id, customer_id)
    restrictions.forget(session, workspace_id, [customer_id])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{customer_id}/shred")
def shred_customer(
    workspace_id: str,
    customer_id: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
) -> Erased:
    """Erases the customer everywhere (the data key is destroyed); the row stays as a tombstone."""
    principal.require(Permission.CUSTOMERS_DELETE)
    trail.record(Event(audit.action("api", "customer", "shred"), customer_id=customer_id))
    return _erase(request, session, workspace_id, customer_id)


@router.post("/lookup")
def lookup_customers(
    workspace_id: str,
    body: Lookup,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    plan: Plan,
    trail: AuditTrail,
) -> LookupResult:
    """Exact search by one key, sent in the body so that it stays out of URLs and server logs. A restricted
    customer (Art. 18) is found but shown masked, whatever the purpose."""
    field, value = body.key()
    search = (audit.search_kind(field), str(value))
    try:
        views = _service(request).lookup(session, workspace_id, field, value, plan)  # opens the keys with the rows
    except ForbiddenError:  # searching by a field the role may not see: the attempt is what matters
        denied = Event(audit.action("api", "customer", "search"), "denied", purpose=plan.purpose, ticket=plan.ticket)
        record_apart(
            request, workspace_id, replace(denied, search_kind=search[0], search_term=search[1]), trail.context
        )
        raise
    keyring = _keyring(request, session, workspace_id)  # the one the lookup opened, in this transaction
    restricted = restrictions.held(session, workspace_id, [v.id for v in views]) if plan.purpose else set()
    if restricted:
        masked = policies(request).plan(session, principal, None, None)
        views = [_service(request).view(session, workspace_id, v.id, masked, keyring) if v.id in restricted else v
                 for v in views]  # fmt: skip
    found = [(v.id, v.disclosure) for v in views]
    trail.viewed("search", plan, found, search=search, keyring=keyring)
    return LookupResult(customers=[CustomerOut.of(v) for v in views])


@router.post("/{customer_id}/break-glass")
def break_glass(
    workspace_id: str,
    customer_id: str,
    body: BreakGlassIn,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    plan: Plan,
    trail: AuditTrail,
) -> CustomerOut:
    """Reveals every field beyond policy for a role allowed to break glass; recorded for the privacy officer."""
    del plan  # the caller's ordinary decision is taken (and checked) first; break-glass widens it
    service = _service(request)
    keyring = _keyring(request, session, workspace_id)
    widened = policies(request).break_glass(session, keyring, principal, customer_id, body.purpose, body.justification)
    view = service.view(session, workspace_id, customer_id, widened, keyring)
    trail.viewed("break-glass", widened, [(view.id, view.disclosure)], keyring=keyring)
    return CustomerOut.of(view)
