"""Sign-in (password with a TOTP or recovery code), the second-factor step, and sign-out."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from obhut.console.client import Api, ProblemError
from obhut.console.desk import SESSION_COOKIE, WORKSPACE_COOKIE, end_session, keep_session, workspace_path
from obhut.console.web import checked_form, redirect, render
from obhut.kit.clock import now

router = APIRouter(prefix="/console", include_in_schema=False)
REASONS = {"expired": "Your session has ended. Please sign in again.", "out": "You are signed out."}


@router.get("/sign-in")
def sign_in_page(request: Request, reason: Annotated[str, Query(max_length=20)] = "") -> HTMLResponse:
    workspace = request.cookies.get(WORKSPACE_COOKIE, request.app.state.console_workspace)
    return render(request, "console/sign_in.html", workspace=workspace, notice=REASONS.get(reason, ""))


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await checked_form(request)
    workspace = str(form.get("workspace", "")).strip()
    body = {"username": str(form.get("username", "")), "password": str(form.get("password", ""))}
    if code := str(form.get("code", "")).replace(" ", ""):  # six digits, or one of the recovery codes
        body["totp_code" if code.isdigit() else "recovery_code"] = code
    try:
        done = await Api(request).send("POST", workspace_path(workspace, "/auth/login"), body)
    except ProblemError as problem:
        detail = problem.detail if problem.status in (401, 429) else "Check the workspace, username and password."
        return render(request, "console/sign_in.html", 401, workspace=workspace, error=detail)
    expires = datetime.fromisoformat(str(done["expires_at"]))
    response = redirect("/console/mfa" if done["mfa_required"] else "/console")
    keep_session(response, workspace, str(done["token"]), max(1, int((expires - now()).total_seconds())))
    return response


@router.get("/mfa")
def mfa_page(request: Request) -> HTMLResponse:
    return render(request, "console/mfa.html")


@router.post("/mfa")
async def mfa(request: Request) -> Response:
    form = await checked_form(request)
    token, workspace = request.cookies.get(SESSION_COOKIE), request.cookies.get(WORKSPACE_COOKIE, "")
    if not token:
        return redirect("/console/sign-in?reason=expired")
    try:
        body = {"code": str(form.get("code", "")).strip()}
        await Api(request, token).send("POST", workspace_path(workspace, "/auth/mfa/totp"), body)
    except ProblemError as problem:
        return render(request, "console/mfa.html", 401, error=problem.detail)
    return redirect("/console")


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    await checked_form(request)
    token, workspace = request.cookies.get(SESSION_COOKIE), request.cookies.get(WORKSPACE_COOKIE, "")
    if token:
        with contextlib.suppress(ProblemError):  # an expired session is signed out already
            await Api(request, token).send("POST", workspace_path(workspace, "/auth/logout"))
    response = redirect("/console/sign-in?reason=out")
    end_session(response)
    return response
