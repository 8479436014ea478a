"""Customers at the console: list and search (search terms are posted, never put in a URL), a masked detail,
reveal for a stated purpose, break-glass, create and edit, consent history and who looked."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from obhut.console.client import ProblemError
from obhut.console.desk import Desk, Staff
from obhut.console.forms import said
from obhut.console.web import checked_form, redirect, render

router = APIRouter(prefix="/console/customers", include_in_schema=False)
SEARCH_KEYS = {"name": "Name", "email": "Email", "phone": "Phone", "iban": "IBAN", "card_number": "Card number",
               "external_ref": "Customer number"}  # fmt: skip
LABELS = {
    "external_ref": "Customer number", "given_name": "Given name", "family_name": "Family name",
    "birth_date": "Date of birth", "email": "Email", "phone": "Phone", "postal_address": "Postal address",
    "iban": "IBAN", "card": "Payment card", "notes": "Notes",
}  # fmt: skip
TEXT_FIELDS = ("given_name", "family_name", "birth_date", "email", "phone", "iban", "card_number", "external_ref",
               "notes")  # fmt: skip
ADDRESS_FIELDS = ("line1", "line2", "postal_code", "city", "country")


def shown(value: Any) -> str:
    """A field's value as text: an address on one line, a card as brand and last four digits."""
    if value is None:
        return "—"
    if isinstance(value, dict) and "last4" in value:
        return f"{value['brand']} •••• {value['last4']}"
    if isinstance(value, dict):
        return ", ".join(str(v) for v in value.values() if v)
    return str(value)


def _rows(customer: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(LABELS[name], shown(customer.get(name)), how) for name, how in customer["disclosure"].items()]


@router.get("")
async def index(request: Request, desk: Staff, after: Annotated[str, Query(max_length=64)] = "") -> HTMLResponse:
    page = await desk.api.get(desk.at("/customers"), after=after, limit=25)
    return render(request, "console/customers/index.html", desk=desk, page=page, keys=SEARCH_KEYS, shown=shown)


@router.post("/search")
async def search(request: Request, desk: Staff) -> HTMLResponse:
    form = await checked_form(request)
    key, term = str(form.get("key", "")), str(form.get("term", "")).strip()
    context: dict[str, Any] = {"desk": desk, "keys": SEARCH_KEYS, "shown": shown, "key": key, "searched": True}
    if key not in SEARCH_KEYS or not term:
        return render(request, "console/customers/index.html", 422, error="Choose what to search by and enter a value.",
                      **context)  # fmt: skip
    try:
        found = await desk.api.send("POST", desk.at("/customers/lookup"), {key: term})
    except ProblemError as problem:
        return render(request, "console/customers/index.html", problem.status, error=said(problem), **context)
    return render(request, "console/customers/index.html", page={"customers": found["customers"]}, **context)


async def _detail(request: Request, desk: Desk, customer_id: str, customer: dict[str, Any], **extra: Any) -> Response:
    policy = await desk.api.get(desk.at("/policy"))
    states = await desk.api.get(desk.at(f"/consent/customers/{customer_id}"))
    return render(
        request, "console/customers/detail.html", desk=desk, customer=customer, rows=_rows(customer),
        purposes=policy["purposes"], states=states, **extra,
    )  # fmt: skip


@router.get("/new")
async def new_page(request: Request, desk: Staff) -> HTMLResponse:
    return render(request, "console/customers/form.html", desk=desk, values={}, errors={}, labels=LABELS)


@router.post("/new")
async def create(request: Request, desk: Staff) -> Response:
    form = await checked_form(request)
    body = _fields(form)
    try:
        created = await desk.api.send("POST", desk.at("/customers"), body)
    except ProblemError as problem:
        return _form_again(request, desk, form, problem)
    return redirect(f"/console/customers/{created['id']}?created=1")


@router.get("/{customer_id}")
async def detail(
    request: Request, desk: Staff, customer_id: str, created: Annotated[str, Query(max_length=1)] = ""
) -> Response:
    customer = await desk.api.get(desk.at(f"/customers/{customer_id}"))
    flash = "The customer was created." if created else ""
    return await _detail(request, desk, customer_id, customer, flash=flash)


@router.post("/{customer_id}/reveal")
async def reveal(request: Request, desk: Staff, customer_id: str) -> Response:
    """The customer for a stated purpose (and ticket); each field revealed only where the policy allows."""
    form = await checked_form(request)
    purpose, ticket = str(form.get("purpose", "")), str(form.get("ticket", "")).strip()
    try:
        customer = await desk.api.get(desk.at(f"/customers/{customer_id}"), purpose=purpose, ticket=ticket)
    except ProblemError as problem:
        masked = await desk.api.get(desk.at(f"/customers/{customer_id}"))
        return await _detail(request, desk, customer_id, masked, error=said(problem))
    return await _detail(request, desk, customer_id, customer, purpose=purpose, ticket=ticket)


@router.post("/{customer_id}/break-glass")
async def break_glass(request: Request, desk: Staff, customer_id: str) -> Response:
    form = await checked_form(request)
    body = {"purpose": str(form.get("purpose", "")), "justification": str(form.get("justification", "")).strip()}
    try:
        customer = await desk.api.send("POST", desk.at(f"/customers/{customer_id}/break-glass"), body)
    except ProblemError as problem:
        masked = await desk.api.get(desk.at(f"/customers/{customer_id}"))
        return await _detail(request, desk, customer_id, masked, error=said(problem))
    notice = "Break-glass access: every field is shown and the privacy officer will review this access."
    return await _detail(request, desk, customer_id, customer, purpose=body["purpose"], warning=notice)


@router.get("/{customer_id}/edit")
async def edit_page(request: Request, desk: Staff, customer_id: str) -> HTMLResponse:
    customer = await desk.api.get(desk.at(f"/customers/{customer_id}"))
    return render(request, "console/customers/form.html", desk=desk, customer=customer, values={}, errors={},
                  labels=LABELS, shown=shown)  # fmt: skip


@router.post("/{customer_id}/edit")
async def edit(request: Request, desk: Staff, customer_id: str) -> Response:
    form = await checked_form(request)
    try:
        await desk.api.send("PATCH", desk.at(f"/customers/{customer_id}"), _fields(form))
    except ProblemError as problem:
        customer = await desk.api.get(desk.at(f"/customers/{customer_id}"))
        return _form_again(request, desk, form, problem, customer=customer)
    return redirect(f"/console/customers/{customer_id}")


@router.post("/{customer_id}/preference-link")
async def preference_link(request: Request, desk: Staff, customer_id: str) -> Response:
    """A privacy-centre link for the customer, shown once to hand over (by email, in a letter)."""
    await checked_form(request)
    link = await desk.api.send("POST", desk.at(f"/consent/customers/{customer_id}/preference-link"))
    customer = await desk.api.get(desk.at(f"/customers/{customer_id}"))
    return await _detail(request, desk, customer_id, customer, link=link)


@router.get("/{customer_id}/consent")
async def consent(request: Request, desk: Staff, customer_id: str) -> HTMLResponse:
    states = await desk.api.get(desk.at(f"/consent/customers/{customer_id}"))
    ledger = await desk.api.get(desk.at(f"/consent/customers/{customer_id}/ledger"))
    return render(request, "console/customers/consent.html", desk=desk, customer_id=customer_id, states=states,
                  ledger=ledger)  # fmt: skip


@router.get("/{customer_id}/access")
async def access(request: Request, desk: Staff, customer_id: str) -> HTMLResponse:
    report = await desk.api.get(desk.at(f"/audit/customers/{customer_id}/report"), lang="en")
    return render(request, "console/customers/access.html", desk=desk, customer_id=customer_id, report=report)


def _fields(form: FormData) -> dict[str, Any]:
    """The API body from the form: blank fields are left out (an edit leaves them as they are)."""
    body: dict[str, Any] = {name: value for name in TEXT_FIELDS if (value := str(form.get(name, "")).strip())}
    address = {name: str(form.get(f"address_{name}", "")).strip() for name in ADDRESS_FIELDS}
    if any(address.values()):
        body["postal_address"] = address | {"line2": address["line2"] or None}
    return body


def _form_again(request: Request, desk: Desk, form: FormData, problem: ProblemError, **extra: Any) -> HTMLResponse:
    """The form with what was typed and the API's messages beside each field."""
    values = {name: str(value) for name, value in form.items() if name != "csrf"}
    errors = {_field_of(pointer): message for pointer, message in problem.errors.items()}
    return render(request, "console/customers/form.html", 422, desk=desk, values=values, errors=errors,
                  error=problem.detail, labels=LABELS, shown=shown, **extra)  # fmt: skip


def _field_of(pointer: str) -> str:
    """The form field an API error points at (`/postal_address/city` is the address's city)."""
    name = pointer.replace("postal_address/", "address_")
    return "card_number" if name == "card" else name
