"""Data-subject requests at the console: the queue by deadline, opening a request for a customer, its
steps (verify, extend, reject, complete), the access export as a download, and an erasure's certificate
with its claims. The API checks `rights:manage` (and `customers:delete` for an erasure)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from obhut.console.client import API, ProblemError
from obhut.console.desk import Desk, Staff
from obhut.console.forms import flash, said
from obhut.console.web import checked_form, redirect, render
from obhut.kit.clock import now

router = APIRouter(prefix="/console/requests", include_in_schema=False)
RIGHTS = {
    "access": "Access (Art. 15)", "portability": "Portability (Art. 20)", "rectification": "Rectification (Art. 16)",
    "erasure": "Erasure (Art. 17)", "restriction": "Restriction (Art. 18)", "objection": "Objection (Art. 21)",
}  # fmt: skip
STATUSES = ("received", "verified", "completed", "rejected")
CLOSED = frozenset({"completed", "rejected"})
EXPORTED = frozenset({"access", "portability"})
CORRECTABLE = {
    "email": "Email", "phone": "Phone", "given_name": "Given name", "family_name": "Family name",
    "birth_date": "Date of birth", "external_ref": "Customer number", "notes": "Notes",
}  # fmt: skip
DONE = {
    "opened": "The request was opened; its deadline runs from now.",
    "verify": "The requester's identity is recorded as verified.",
    "extend": "The deadline was extended; tell the requester why.",
    "reject": "The request was rejected.",
    "complete": "The request was answered.",
}
ERASE_WORD = "ERASE"
Step = Literal["verify", "extend", "reject", "complete"]


class Left(NamedTuple):
    """Calendar days (UTC) until the deadline's day, or since it when `overdue`."""

    days: int
    overdue: bool


def days_left(row: dict[str, Any], at: datetime) -> Left | None:
    """None once the request is closed."""
    if row["status"] in CLOSED:
        return None
    deadline = datetime.fromisoformat(row["deadline"]).astimezone(UTC)
    days = (deadline.date() - at.astimezone(UTC).date()).days
    return Left(-days, overdue=True) if deadline < at else Left(days, overdue=False)


def claims_of(token: str) -> dict[str, Any]:
    """An erasure certificate's claims: the JWS payload, shown as it is (the key link verifies it)."""
    part = token.split(".")[1]
    found: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return found


@router.get("")
async def queue(request: Request, desk: Staff, status: Annotated[str, Query(max_length=20)] = "") -> HTMLResponse:
    found = await desk.api.get(desk.at("/requests"), status=status if status in STATUSES else "")
    rows = found["requests"]  # the API answers them soonest deadline first
    at = now()
    return render(request, "console/requests/index.html", desk=desk, rows=[(r, days_left(r, at)) for r in rows],
                  rights=RIGHTS, statuses=STATUSES, chosen=status)  # fmt: skip


def _form_page(request: Request, desk: Desk, values: dict[str, str], status: int = 200, **extra: Any) -> HTMLResponse:
    return render(request, "console/requests/new.html", status, desk=desk, values=values, rights=RIGHTS,
                  correctable=CORRECTABLE, **extra)  # fmt: skip


@router.get("/new")
async def new_page(request: Request, desk: Staff, customer: Annotated[str, Query(max_length=64)] = "") -> HTMLResponse:
    return _form_page(request, desk, {"customer_id": customer, "language": "de"}, errors={})


def _details(form: FormData, right: str) -> dict[str, Any] | None:
    """A rectification's correction, or the purposes an objection names (none: every purpose)."""
    if right == "rectification":
        field, value = str(form.get("field", "")), str(form.get("value", "")).strip()
        return {"fields": {field: value}} if field in CORRECTABLE and value else None
    if right == "objection":
        purposes = [p.strip() for p in str(form.get("purposes", "")).split(",") if p.strip()]
        return {"purposes": purposes} if purposes else None
    return None


@router.post("/new")
async def open_request(request: Request, desk: Staff) -> Response:
    form = await checked_form(request)
    values = {name: str(value).strip() for name, value in form.items() if name != "csrf"}
    right = values.get("right", "")
    body = {"customer_id": values.get("customer_id", ""), "right": right, "language": values.get("language", "de"),
            "details": _details(form, right)}  # fmt: skip
    try:
        created = await desk.api.send("POST", desk.at("/requests"), body)
    except ProblemError as problem:
        errors = {("value" if k in CORRECTABLE else k): v for k, v in problem.errors.items()}
        return _form_page(request, desk, values, problem.status, errors=errors, error=said(problem))
    return redirect(f"/console/requests/{created['id']}?done=opened")


def _page(request: Request, desk: Desk, row: dict[str, Any], status: int = 200, **extra: Any) -> HTMLResponse:
    certificate = row.get("certificate")
    return render(
        request, "console/requests/detail.html", status, desk=desk, r=row, left=days_left(row, now()),
        rights=RIGHTS, exported=row["right"] in EXPORTED, claims=claims_of(certificate) if certificate else None,
        key_url=API + desk.at("/requests/certificate-key"), erase_word=ERASE_WORD, **extra,
    )  # fmt: skip


@router.get("/{request_id}")
async def detail(
    request: Request, desk: Staff, request_id: str, done: Annotated[str, Query(max_length=10)] = ""
) -> HTMLResponse:
    row = await desk.api.get(desk.at(f"/requests/{request_id}"))
    return _page(request, desk, row, flash=flash(DONE, done))


def _step_body(step: Step, form: FormData) -> dict[str, Any] | None:
    if step == "verify":
        return {"method": str(form.get("method", "")).strip()}
    if step == "extend":
        months = str(form.get("months", ""))
        return {"months": int(months) if months.isdigit() else 0, "reason": str(form.get("reason", "")).strip()}
    if step == "reject":
        return {"reason": str(form.get("reason", "")).strip()}
    return None


@router.post("/{request_id}/{step}")
async def take_step(request: Request, desk: Staff, request_id: str, step: Step) -> Response:
    """One step of the request; an erasure is completed only with the typed confirmation."""
    form = await checked_form(request)
    confirm = form.get("confirm")
    if confirm is not None and str(confirm).strip() != ERASE_WORD:
        refused = f"Type {ERASE_WORD} to confirm the erasure; nothing was erased."
        return await _again(request, desk, request_id, ProblemError(422, "Not confirmed", refused))
    try:
        await desk.api.send("POST", desk.at(f"/requests/{request_id}/{step}"), _step_body(step, form))
    except ProblemError as problem:
        return await _again(request, desk, request_id, problem)
    return redirect(f"/console/requests/{request_id}?done={step}")


async def _again(request: Request, desk: Desk, request_id: str, problem: ProblemError) -> HTMLResponse:
    """The request's page with why the step was refused."""
    row = await desk.api.get(desk.at(f"/requests/{request_id}"))
    return _page(request, desk, row, problem.status, error=said(problem))


@router.get("/{request_id}/export")
async def export(desk: Staff, request_id: str) -> Response:
    """The API's ZIP as it is, under the file name the API gives it."""
    return await desk.api.download(desk.at(f"/requests/{request_id}/export"), f"export-{request_id}.zip")
