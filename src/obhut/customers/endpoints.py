from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from obhut.access.dependencies import Admin
from obhut.customers.schemas import CustomerFields, CustomerOut, Erased, Lookup, LookupResult
from obhut.customers.service import CustomerService
from obhut.kit.web import DbSession

router = APIRouter(prefix="/workspaces/{workspace_id}/customers", tags=["customers"])


def _service(request: Request) -> CustomerService:
    service: CustomerService = request.app.state.container.customers
    return service


@router.post("", status_code=status.HTTP_201_CREATED)
def create_customer(
    workspace_id: str, body: CustomerFields, request: Request, session: DbSession, _admin: Admin
) -> CustomerOut:
    return CustomerOut.of(_service(request).create(session, workspace_id, body.supplied()))


@router.get("/{customer_id}")
def read_customer(
    workspace_id: str, customer_id: str, request: Request, session: DbSession, _admin: Admin
) -> CustomerOut:
    return CustomerOut.of(_service(request).get(session, workspace_id, customer_id))


@router.patch("/{customer_id}")
def update_customer(
    workspace_id: str, customer_id: str, body: CustomerFields, request: Request, session: DbSession, _admin: Admin
) -> CustomerOut:
    """Fields present in the body are set; `null` clears one; absent fields stay as they are."""
    return CustomerOut.of(_service(request).update(session, workspace_id, customer_id, body.supplied()))


@router.delete("/{customer_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_customer(
    workspace_id: str, customer_id: str, request: Request, session: DbSession, _admin: Admin
) -> Response:
    """Erases the customer: shreds the data key, then removes the row."""
    _service(request).delete(session, workspace_id, customer_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{customer_id}/shred")
def shred_customer(workspace_id: str, customer_id: str, request: Request, session: DbSession, _admin: Admin) -> Erased:
    """Destroys the customer's data key; the row stays as a tombstone."""
    return Erased(id=customer_id, erased_at=_service(request).shred(session, workspace_id, customer_id))


@router.post("/lookup")
def lookup_customers(
    workspace_id: str, body: Lookup, request: Request, session: DbSession, _admin: Admin
) -> LookupResult:
    field, value = body.key()
    records = _service(request).lookup(session, workspace_id, field, value)
    return LookupResult(customers=[CustomerOut.of(r) for r in records])
