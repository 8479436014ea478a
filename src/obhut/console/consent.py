"""The consent purpose catalogue: purposes defined and edited (titles and descriptions in German and English,
legal basis, data categories, recipients, retention), and new notice versions published."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from obhut.consent.rules import LegalBasis
from obhut.console.client import ProblemError
from obhut.console.desk import Desk, Staff
from obhut.console.forms import flash, page, sent, text, typed
from obhut.console.web import checked_form, redirect, render
from obhut.customers.rules import Category

router = APIRouter(prefix="/console/consent", include_in_schema=False)
TEXTS = ("title_en", "title_de", "description_en", "description_de", "recipients", "retention")
DONE = {
    "defined": "The purpose was defined. Publish its notice so that customers can consent to it.",
    "saved": "The purpose was saved.",
    "published": "The notice was published.",
}


def _body(form: FormData) -> dict[str, Any]:
    """The API's purpose from the form (also what the form shows again after a refusal)."""
    body: dict[str, Any] = {name: text(form, name) for name in TEXTS}
    body["legal_basis"] = text(form, "legal_basis")
    body["categories"] = [str(c) for c in form.getlist("categories")]
    body["sale_or_sharing"] = "sale_or_sharing" in form
    return body


def _path(key: str) -> str:
    return f"/consent/purposes/{quote(key, safe='')}"


@router.get("")
async def index(request: Request, desk: Staff) -> HTMLResponse:
    purposes = await desk.api.get(desk.at("/consent/purposes"))
    return render(request, "console/consent/index.html", desk=desk, purposes=purposes)


async def _purpose_page(
    request: Request, desk: Desk, key: str | None, *, problem: ProblemError | None = None, **extra: Any
) -> HTMLResponse:
    """The form for a new purpose (`key` None) or for one in the catalogue, with its notices."""
    purpose: dict[str, Any] | None = None
    if key is not None:
        purposes = await desk.api.get(desk.at("/consent/purposes"))
        purpose = next((p for p in purposes if p["key"] == key), None)
        if purpose is None:
            raise ProblemError(404, "Not found", "There is no purpose with this key in the catalogue.")
    extra.setdefault("values", purpose or {"legal_basis": LegalBasis.CONSENT.value, "categories": []})
    extra.setdefault("notice", {})
    return page(
        request, "console/consent/purpose.html", problem, desk=desk, purpose=purpose,
        bases=[b.value for b in LegalBasis], categories=[c.value for c in Category], **extra,
    )  # fmt: skip


@router.get("/new")
async def new_page(request: Request, desk: Staff) -> HTMLResponse:
    return await _purpose_page(request, desk, None)


@router.post("/new")
async def define(request: Request, desk: Staff) -> Response:
    form = await checked_form(request)
    key, body = text(form, "key"), _body(form)
    if problem := await sent(desk, "PUT", _path(key or "-"), body):
        return await _purpose_page(request, desk, None, problem=problem, values={**body, "key": key})
    return redirect(f"/console/consent/{quote(key, safe='')}?done=defined")


@router.get("/{key}")
async def purpose_page(
    request: Request, desk: Staff, key: str, done: Annotated[str, Query(max_length=20)] = ""
) -> HTMLResponse:
    return await _purpose_page(request, desk, key, flash=flash(DONE, done))


@router.post("/{key}")
async def save(request: Request, desk: Staff, key: str) -> Response:
    form = await checked_form(request)
    body = _body(form)
    if problem := await sent(desk, "PUT", _path(key), body):
        return await _purpose_page(request, desk, key, problem=problem, values={**body, "key": key})
    return redirect(f"/console/consent/{quote(key, safe='')}?done=saved")


@router.post("/{key}/notices")
async def publish(request: Request, desk: Staff, key: str) -> Response:
    form = await checked_form(request)
    body = {name: text(form, name) for name in ("version", "language", "text")}
    if problem := await sent(desk, "POST", _path(key) + "/notices", body):
        return await _purpose_page(request, desk, key, problem=problem, notice=typed(form))
    return redirect(f"/console/consent/{quote(key, safe='')}?done=published")
