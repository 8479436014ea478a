"""Passkeys at the console: sign in with one, and add or remove one's own on the account page. The browser's
WebAuthn ceremonies run in `static/passkeys.js`; these routes carry options and answers between it and the
API, which checks everything (the challenge, the origin, user verification, the signature and its counter)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from obhut.console.client import Api, ProblemError
from obhut.console.desk import Desk, Staff, workspace_path
from obhut.console.forms import flash, page, said, sent
from obhut.console.sign_in import landing, start_session
from obhut.console.web import checked_form, checked_json, redirect

router = APIRouter(prefix="/console", include_in_schema=False)
DONE = {"added": "Your passkey is added. Next time, sign in with it.", "removed": "The passkey is removed."}


async def _json(work: Awaitable[Response]) -> Response:
    """The script's answer: the route's own, or the API's problem as JSON for the script to show."""
    try:
        return await work
    except ProblemError as problem:
        return JSONResponse({"title": problem.title, "detail": said(problem)}, status_code=problem.status)


def _workspace(body: dict[str, Any]) -> str:
    workspace = str(body.get("workspace", "")).strip()
    if not workspace:
        raise ProblemError(400, "Workspace missing", "Enter your workspace, then choose the passkey.")
    return workspace


def _answer(body: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: body.get(name) for name in names}


@router.post("/passkeys/options")
async def sign_in_options(request: Request) -> Response:
    """Options for navigator.credentials.get() in the workspace typed on the sign-in page."""

    async def work() -> Response:
        body = await checked_json(request)
        path = workspace_path(_workspace(body), "/auth/passkeys/sign-in/options")
        return JSONResponse(await Api(request).send("POST", path))

    return await _json(work())


@router.post("/passkeys/sign-in")
async def sign_in(request: Request) -> Response:
    """A console session from the browser's assertion; the script then goes where the answer says."""

    async def work() -> Response:
        body = await checked_json(request)
        path = workspace_path(_workspace(body), "/auth/passkeys/sign-in")
        done = await Api(request).send("POST", path, _answer(body, "challenge_id", "credential"))
        response = JSONResponse({"to": landing(done)})
        start_session(response, _workspace(body), done)
        return response

    return await _json(work())


async def _page(request: Request, desk: Desk, done: str = "", problem: ProblemError | None = None) -> HTMLResponse:
    owned = await desk.api.get(desk.at("/auth/passkeys"))
    return page(request, "console/account.html", problem, desk=desk, passkeys=owned, flash=flash(DONE, done))


@router.get("/account")
async def account(request: Request, desk: Staff, done: Annotated[str, Query(max_length=20)] = "") -> HTMLResponse:
    return await _page(request, desk, done)


@router.post("/account/passkeys/options")
async def registration_options(request: Request, desk: Staff) -> Response:
    """Options for navigator.credentials.create(), for the signed-in staff member."""

    async def work() -> Response:
        await checked_json(request)
        return JSONResponse(await desk.api.send("POST", desk.at("/auth/passkeys/options")))

    return await _json(work())


@router.post("/account/passkeys")
async def register(request: Request, desk: Staff) -> Response:
    async def work() -> Response:
        body = await checked_json(request)
        label = str(body.get("label") or "").strip() or "passkey"
        await desk.api.send("POST", desk.at("/auth/passkeys"), _answer(body, "challenge_id", "credential") | {
            "label": label})  # fmt: skip
        return JSONResponse({"to": "/console/account?done=added"})

    return await _json(work())


@router.post("/account/passkeys/{passkey_id}/remove")
async def remove(passkey_id: str, request: Request, desk: Staff) -> Response:
    await checked_form(request)
    if problem := await sent(desk, "DELETE", f"/auth/passkeys/{quote(passkey_id, safe='')}"):
        return await _page(request, desk, problem=problem)
    return redirect("/console/account?done=removed")
