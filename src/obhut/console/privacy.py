"""The customers' privacy centre. The signed link staff sent opens it: the token goes into a cookie at once
and the address bar shows only `/privacy`, so the link does not linger in history or leak to other sites."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from obhut.consent.preferences import language_of
from obhut.console.client import Api, ProblemError
from obhut.console.web import COOKIE, checked_form, redirect, render
from obhut.console.words import WORDS

router = APIRouter(prefix="/privacy", include_in_schema=False)
LINK_COOKIE = "__Host-obhut-privacy"
LANGUAGE_COOKIE = "__Host-obhut-lang"
CHOICES = ("granted", "withdrawn", "objected")
CORRECTABLE = ("given_name", "family_name", "email", "phone")


class Visit:
    """The customer's link and language for one page."""

    def __init__(self, request: Request) -> None:
        token = request.cookies.get(LINK_COOKIE)
        if not token:
            raise ProblemError(401, "no-link", "no_link")
        self.api = Api(request)
        self.base = f"/preferences/{token}"
        self.language = language(request)
        self.words = WORDS[self.language]


def language(request: Request) -> str:
    """The customer's language: the switch's cookie, else their browser's, else German."""
    return language_of(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language", ""))


def _page(request: Request, visit: Visit, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return render(request, f"privacy/{name}", status, lang=visit.language, w=visit.words, **context)


@router.get("")
async def centre(
    request: Request,
    done: Annotated[str, Query(max_length=20)] = "",
    purpose: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    visit = Visit(request)
    found = await visit.api.get(visit.base, lang=visit.language)
    titles = {p["purpose"]: p["title"] for p in found["purposes"]}
    flash = visit.words[done].format(title=titles.get(purpose, purpose)) if done in CHOICES else ""
    return _page(request, visit, "centre.html", centre=found, flash=flash)


@router.post("/choice")
async def choose(request: Request) -> Response:
    visit = Visit(request)
    form = await checked_form(request)
    purpose, kind = str(form.get("purpose", "")), str(form.get("kind", ""))
    body = {"purpose": purpose, "kind": kind, "language": visit.language}
    await visit.api.send("POST", f"{visit.base}/events", body)
    return redirect(f"/privacy?done={kind}&purpose={purpose}")


@router.get("/language/{language}")
def switch_language(language: str) -> Response:
    response = redirect("/privacy")
    response.set_cookie(LANGUAGE_COOKIE, language if language in WORDS else "de", **COOKIE)  # type: ignore[arg-type]
    return response


@router.get("/data")
async def my_data(request: Request, asked: Annotated[str, Query(max_length=40)] = "") -> HTMLResponse:
    visit = Visit(request)
    requests = (await visit.api.get(f"{visit.base}/requests"))["requests"]
    kept = await visit.api.get(f"{visit.base}/erasure-preview")
    flash = ""
    if asked:
        mine = [r for r in requests if r["id"] == asked]
        flash = visit.words["requested"].format(at=mine[0]["deadline"][:10]) if mine else ""
    fields = {name: visit.words[f"field.{name}"] for name in CORRECTABLE}
    return _page(request, visit, "data.html", requests=requests, kept=kept, fields=fields, flash=flash)


@router.post("/requests")
async def ask(request: Request) -> Response:
    visit = Visit(request)
    form = await checked_form(request)
    right = str(form.get("right", ""))
    body: dict[str, Any] = {"right": right, "language": visit.language}
    if right == "rectification":
        body["details"] = {"fields": {n: str(form.get(n, "")).strip() for n in CORRECTABLE if form.get(n)}}
    if right == "erasure" and str(form.get("confirm", "")).strip() != visit.words["delete_word"]:
        raise ProblemError(422, visit.words["error"], visit.words["confirm_delete"])
    opened = await visit.api.send("POST", f"{visit.base}/requests", body)
    return redirect(f"/privacy/data?asked={opened['id']}")


@router.get("/requests/{request_id}/export")
async def download(request: Request, request_id: str) -> Response:
    visit = Visit(request)
    return await visit.api.download(f"{visit.base}/requests/{request_id}/export", "my-data.zip")


@router.get("/access")
async def who_looked(request: Request) -> HTMLResponse:
    visit = Visit(request)
    entries = await visit.api.get(f"{visit.base}/access", lang=visit.language)
    return _page(request, visit, "access.html", entries=entries)


@router.get("/{token}")
def open_link(token: str) -> Response:
    """The link from the message: its token becomes a cookie for this browser session, then the centre."""
    response = redirect("/privacy")
    response.set_cookie(LINK_COOKIE, token, **COOKIE)  # type: ignore[arg-type]
    return response
