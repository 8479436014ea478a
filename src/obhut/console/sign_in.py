"""Sign-in (password with a TOTP or recovery code, or single sign-on), the second-factor step, and sign-out.
Passkey sign-in is in `passkeys.py`.

Single sign-on runs through the API: the console asks it to start a sign-in that comes back to the console
(the API sets the cookie binding the sign-in to this browser), and the console's callback hands the provider's
answer, with that cookie, to the API's callback, which checks everything and answers a session token."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from obhut.access.sso_endpoints import CONSOLE_CALLBACK, COOKIE_PREFIX
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
    response = redirect(landing(done))
    start_session(response, workspace, done)
    return response


def landing(done: dict[str, Any]) -> str:
    """Where a new session goes: the console, or first the second-factor step its role needs."""
    return "/console/mfa" if done["mfa_required"] else "/console"


def start_session(response: Response, workspace: str, done: dict[str, Any]) -> None:
    """The API's new session (its token and expiry) as the console's session cookie."""
    expires = datetime.fromisoformat(str(done["expires_at"]))
    keep_session(response, workspace, str(done["token"]), max(1, int((expires - now()).total_seconds())))


@router.post("/sso")
async def start_sso(request: Request) -> Response:
    """Sends the browser to the workspace's identity provider, to come back to `finish_sso`."""
    form = await checked_form(request)
    workspace = str(form.get("workspace", "")).strip()
    if not workspace:
        return render(request, "console/sign_in.html", 400, error="Enter your workspace, then choose single sign-on.")
    try:
        path = workspace_path(workspace, "/auth/sso/start")
        reply = await Api(request).call("GET", path, params={"to": "console"})
    except ProblemError as problem:
        return render(request, "console/sign_in.html", problem.status, workspace=workspace, error=problem.detail)
    # A page, not a redirect: browsers hold a form's redirect to another site against `form-action 'self'`.
    to = reply.headers["location"]
    response = render(request, "console/onward.html", to=to, heading="Signing in", link="Continue to your sign-in")
    for cookie in reply.headers.get_list("set-cookie"):  # the API's cookie that binds the sign-in to this browser
        response.headers.append("set-cookie", cookie)
    return response


@router.get("/sso/{workspace_id}/callback", name=CONSOLE_CALLBACK)
async def finish_sso(
    workspace_id: str,
    request: Request,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str, Query(max_length=4096)] = "",
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The provider's answer, checked by the API. The session then starts on a page of our own: the browser
    arrived here from another site, so it would not send the SameSite=Strict session cookie on a redirect."""
    bound = {name: value for name, value in request.cookies.items() if name.startswith(COOKIE_PREFIX)}
    query = {"state": state, "code": code} | ({"error": error} if error is not None else {})
    try:
        reply = await Api(request).call(
            "GET",
            workspace_path(workspace_id, "/auth/sso/callback"),
            params=query,
            headers={"cookie": "; ".join(f"{name}={value}" for name, value in bound.items())},
        )
    except ProblemError as problem:
        response = render(request, "console/sign_in.html", problem.status, workspace=workspace_id, error=problem.detail)
    else:
        done = reply.json()
        to = landing(done)
        response = render(request, "console/onward.html", to=to, heading="Signed in", link="Continue to the console")
        start_session(response, workspace_id, done)
    for name in bound:
        response.delete_cookie(name, path=request.url.path, httponly=True, samesite="lax")
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
