"""The workspace's keys: each version's state, a rotation started and followed, revocation behind the
workspace id typed out (checked by the API too)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from obhut.console.client import ProblemError
from obhut.console.desk import Desk, Staff
from obhut.console.forms import flash, page, sent, text
from obhut.console.web import checked_form, redirect

router = APIRouter(prefix="/console/keys", include_in_schema=False)
DONE = {
    "rotated": "Rotation started: new data is encrypted under the new key version now; existing data keys move "
    "to it in the background.",
    "revoked": "The workspace's keys are revoked. No personal data can be read or written until they are restored.",
}


async def _page(request: Request, desk: Desk, *, problem: ProblemError | None = None, done: str = "") -> HTMLResponse:
    versions = await desk.api.get(desk.at("/keys"))
    progress = await desk.api.get(desk.at("/keys/rotation"))
    return page(
        request, "console/keys/index.html", problem, desk=desk, versions=versions, progress=progress,
        revoked=any(v["revoked_at"] for v in versions), flash=flash(DONE, done),
    )  # fmt: skip


@router.get("")
async def index(request: Request, desk: Staff, done: Annotated[str, Query(max_length=20)] = "") -> HTMLResponse:
    return await _page(request, desk, done=done)


@router.post("/rotate")
async def rotate(request: Request, desk: Staff) -> Response:
    await checked_form(request)
    if problem := await sent(desk, "POST", "/keys/rotate"):
        return await _page(request, desk, problem=problem)
    return redirect("/console/keys?done=rotated")


@router.post("/revoke")
async def revoke(request: Request, desk: Staff) -> Response:
    form = await checked_form(request)
    if problem := await sent(desk, "POST", "/keys/revoke", {"confirm": text(form, "confirm")}):
        return await _page(request, desk, problem=problem)
    return redirect("/console/keys?done=revoked")
