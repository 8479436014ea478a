"""Retention at the console: policies per data category, legal holds, a customer's contract end, what a
purge would do now (its dry run), and the backups the command line made. The API checks `rights:manage`;
backups are made, verified and restored only with `obhut backup` (a restore replaces the databases)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from obhut.console.desk import Desk, Staff
from obhut.console.forms import flash, said, sent, typed
from obhut.console.web import checked_form, redirect, render
from obhut.customers.rules import Category
from obhut.retention.rules import Action, Anchor

router = APIRouter(prefix="/console/retention", include_in_schema=False)
CATEGORIES = tuple(c.value for c in Category)
ANCHORS = {Anchor.COLLECTION: "collection (the customer was created)",
           Anchor.LAST_ACTIVITY: "last activity (the record last changed)",
           Anchor.CONTRACT_END: "contract end (once recorded)"}  # fmt: skip
ACTIONS = {Action.DELETE: "delete the data and the customer's row",
           Action.ANONYMISE: "anonymise (the data goes, a row without personal data stays)"}  # fmt: skip
DONE = {
    "policy": "The retention policy was saved.",
    "policy-removed": "The retention policy was removed.",
    "hold": "The legal hold was added; deletion of what it covers stops until it is lifted.",
    "hold-lifted": "The legal hold was lifted.",
    "contract-end": "The contract end was recorded.",
}


def _part(value: str) -> str:
    """A value typed into a form, safe as one segment of an API path."""
    return quote(value.strip(), safe="") or "-"


async def _page(request: Request, desk: Desk, status: int = 200, **extra: Any) -> HTMLResponse:
    found = await desk.api.get(desk.at("/retention"))
    return render(request, "console/retention/index.html", status, desk=desk, policies=found["policies"],
                  holds=found["holds"], categories=CATEGORIES, anchors=ANCHORS, actions=ACTIONS, **extra)  # fmt: skip


async def _change(request: Request, desk: Desk, method: str, path: str, body: Any, done: str) -> Response:
    """Sends one change to the API: back to the page with its message, or the page again with the API's."""
    problem = await sent(desk, method, path, body)
    if problem is not None:  # the form was read (and checked) already; Starlette keeps it on the request
        return await _page(request, desk, problem.status, error=said(problem), values=typed(await request.form()))
    return redirect(f"/console/retention?done={done}")


@router.get("")
async def index(request: Request, desk: Staff, done: Annotated[str, Query(max_length=20)] = "") -> HTMLResponse:
    return await _page(request, desk, flash=flash(DONE, done), values={})


@router.post("/policies")
async def set_policy(request: Request, desk: Staff) -> Response:
    form = await checked_form(request)
    days = str(form.get("days", "")).strip()
    body = {"days": int(days) if days.isdigit() else 0, "anchor": str(form.get("anchor", "")),
            "action": str(form.get("action", "")), "legal_duty": str(form.get("legal_duty", "")).strip()}  # fmt: skip
    category = _part(str(form.get("category", "")))
    return await _change(request, desk, "PUT", f"/retention/policies/{category}", body, "policy")


@router.post("/policies/{category}/remove")
async def remove_policy(request: Request, desk: Staff, category: str) -> Response:
    await checked_form(request)
    return await _change(request, desk, "DELETE", f"/retention/policies/{_part(category)}", None, "policy-removed")


@router.post("/holds")
async def add_hold(request: Request, desk: Staff) -> Response:
    form = await checked_form(request)
    customer, category = str(form.get("customer_id", "")).strip(), str(form.get("hold_category", ""))
    body = {
        "customer_id": customer or None,
        "category": category or None,
        "reason": str(form.get("reason", "")).strip(),
    }
    return await _change(request, desk, "POST", "/retention/holds", body, "hold")


@router.post("/holds/{hold_id}/lift")
async def lift_hold(request: Request, desk: Staff, hold_id: str) -> Response:
    await checked_form(request)
    return await _change(request, desk, "DELETE", f"/retention/holds/{_part(hold_id)}", None, "hold-lifted")


@router.post("/contract-end")
async def contract_end(request: Request, desk: Staff) -> Response:
    """The day the customer's contract ended (midnight UTC), or none: the contract runs again."""
    form = await checked_form(request)
    day, customer = str(form.get("ended_on", "")).strip(), str(form.get("contract_customer_id", "")).strip()
    if not customer:
        return await _page(request, desk, 422, error="Enter the customer's id.", values={"ended_on": day})
    body = {"ended_at": f"{day}T00:00:00+00:00" if day else None}
    return await _change(request, desk, "PUT", f"/customers/{_part(customer)}/contract-end", body, "contract-end")


@router.get("/purge")
async def purge(request: Request, desk: Staff) -> HTMLResponse:
    report = await desk.api.get(desk.at("/retention/purge"))
    return render(request, "console/retention/purge.html", desk=desk, report=report)


@router.get("/backups")
async def backups(request: Request, desk: Staff) -> HTMLResponse:
    found = await desk.api.get(desk.at("/backups"))
    return render(request, "console/retention/backups.html", desk=desk, found=found)
