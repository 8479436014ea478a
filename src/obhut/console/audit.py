"""The access log at the console: entries filtered by staff member, customer pseudonym, data category,
purpose, action and days (none of them personal data, so the filter is a GET form), an entry's every field,
CSV and JSON downloads, the newest signed checkpoint and a verification of the whole log on request."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from obhut.console.client import ProblemError
from obhut.console.desk import Desk, Staff
from obhut.console.web import checked_form, render

router = APIRouter(prefix="/console/audit", include_in_schema=False)
CATEGORIES = ("identity", "contact", "financial", "notes")
LIMITS = (100, 500, 1000)
EXPORT_LIMIT = 10_000  # the most the API answers at once
FIELDS = (
    ("seq", "Position"), ("at", "When (UTC)"), ("actor", "Staff member or token"), ("role", "Role"),
    ("action", "Action"), ("outcome", "Outcome"), ("customer", "Customer (pseudonym)"), ("target", "Acted on"),
    ("categories", "Data categories"), ("returned", "Fields returned"), ("purpose", "Purpose"),
    ("ticket", "Ticket"), ("search_kind", "Searched by"), ("count", "Customers in the answer"),
    ("address", "Address"), ("user_agent", "User agent"), ("request_id", "Request id"),
)  # fmt: skip


class LogFilter(BaseModel):
    """The filter form's fields, as typed; dates are UTC days, both included."""

    actor: str = Field("", max_length=80)
    customer: str = Field("", max_length=64)
    category: str = Field("", max_length=40)
    purpose: str = Field("", max_length=40)
    action: str = Field("", max_length=80)
    since: str = Field("", max_length=10)
    until: str = Field("", max_length=10)
    limit: int = Field(LIMITS[0], ge=1, le=max(LIMITS))

    def query(self) -> dict[str, Any]:
        """The API's query: `until` is the day after the last one asked for. A bad date raises ValueError."""
        found: dict[str, Any] = {
            "actor": self.actor.strip(), "customer": self.customer.strip(), "category": self.category,
            "purpose": self.purpose, "action": self.action.strip(), "limit": self.limit,
        }  # fmt: skip
        if self.since:
            found["since"] = _midnight(date.fromisoformat(self.since))
        if self.until:
            found["until"] = _midnight(date.fromisoformat(self.until) + timedelta(days=1))
        return found


def _midnight(day: date) -> str:
    return datetime.combine(day, time(), UTC).isoformat()


Wanted = Annotated[LogFilter, Query()]


async def _checkpoint(desk: Desk) -> dict[str, Any] | None:
    """The newest signed checkpoint's origin, size, root hash and signing time; None before the first."""
    try:
        reply = await desk.api.call("GET", desk.at("/audit/checkpoint"))
    except ProblemError as problem:
        if problem.status == HTTPStatus.NOT_FOUND:
            return None
        raise
    origin, size, root = reply.text.split("\n", 3)[:3]
    signed = reply.headers.get("last-modified")
    return {"origin": origin, "size": int(size), "root": root, "note": reply.text,
            "signed_at": parsedate_to_datetime(signed) if signed else None}  # fmt: skip


async def _page(request: Request, desk: Desk, wanted: LogFilter, **extra: Any) -> HTMLResponse:
    checkpoint = await _checkpoint(desk)  # first: it places waiting entries, so each has its position
    policy = await desk.api.get(desk.at("/policy"))
    context: dict[str, Any] = {"desk": desk, "wanted": wanted, "checkpoint": checkpoint, "categories": CATEGORIES,
                               "purposes": policy["purposes"], "limits": LIMITS, "entries": []}  # fmt: skip
    try:
        query = wanted.query()
    except ValueError:
        return render(request, "console/audit/index.html", 422, error="Give dates as YYYY-MM-DD.", **context, **extra)
    context["entries"] = await desk.api.get(desk.at("/audit/entries"), **query)
    context["export"] = _export_query(request)
    return render(request, "console/audit/index.html", **context, **extra)


def _export_query(request: Request) -> str:
    """The filter's query string for the download links (without the page's row limit)."""
    return urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "limit" and v])


@router.get("")
async def index(request: Request, desk: Staff, wanted: Wanted) -> HTMLResponse:
    return await _page(request, desk, wanted)


@router.post("/verify")
async def verify(request: Request, desk: Staff) -> HTMLResponse:
    """Rebuilds the whole tree and checks it against every signed checkpoint; the page shows the outcome."""
    await checked_form(request)
    verified = await desk.api.send("POST", desk.at("/audit/verify"))
    return await _page(request, desk, LogFilter(), verified=verified)


async def _download(desk: Desk, path: str, wanted: LogFilter, name: str) -> Response:
    try:
        query = wanted.query() | {"limit": EXPORT_LIMIT}
    except ValueError:
        raise ProblemError(422, "Invalid filter", "Give dates as YYYY-MM-DD.") from None
    return await desk.api.download(desk.at(path), f"access-log-{desk.workspace}.{name}", **query)


@router.get("/export.csv")
async def export_csv(desk: Staff, wanted: Wanted) -> Response:
    return await _download(desk, "/audit/entries.csv", wanted, "csv")


@router.get("/export.json")
async def export_json(desk: Staff, wanted: Wanted) -> Response:
    return await _download(desk, "/audit/entries", wanted, "json")


def _shown(name: str, value: Any) -> str:
    """A field's value as text: lists joined, the fields returned as `field: how`, nothing as a dash."""
    if value is None or value in ("", [], {}):
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if name == "at":
        return str(value)[:26].replace("T", " ")
    return str(value)


@router.get("/entries/{seq}")
async def entry(request: Request, desk: Staff, seq: int) -> HTMLResponse:
    found = await desk.api.get(desk.at(f"/audit/entries/{seq}"))
    rows = [(label, _shown(name, found.get(name))) for name, label in FIELDS]
    return render(request, "console/audit/entry.html", desk=desk, entry=found, rows=rows)
