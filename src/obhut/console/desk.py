"""Who is at the console: the session cookie, checked on every page by asking the API who it belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response

from obhut.console.client import Api, ProblemError
from obhut.console.web import COOKIE

SESSION_COOKIE = "__Host-obhut-session"
WORKSPACE_COOKIE = "__Host-obhut-workspace"


class SignInRequiredError(Exception):
    """No session, an expired one, or one that still needs its second factor; the handler redirects."""

    def __init__(self, to: str, reason: str = "") -> None:
        super().__init__(to)
        self.to, self.reason = to, reason


@dataclass(frozen=True)
class Desk:
    """The signed-in staff member: the API on their behalf, their workspace, role and permissions."""

    api: Api
    workspace: str
    actor: str
    role: str
    permissions: frozenset[str]

    def may(self, permission: str) -> bool:
        return permission in self.permissions

    def at(self, path: str) -> str:
        """An API path inside the staff member's workspace."""
        return workspace_path(self.workspace, path)


def workspace_path(workspace: str, path: str) -> str:
    """An API path inside `workspace` (its id quoted: it comes from a cookie or a form)."""
    return f"/workspaces/{quote(workspace, safe='')}{path}"


async def desk(request: Request) -> Desk:
    token, workspace = request.cookies.get(SESSION_COOKIE), request.cookies.get(WORKSPACE_COOKIE)
    if not token or not workspace:
        raise SignInRequiredError("/console/sign-in")
    api = Api(request, token)
    try:
        me = await api.get(workspace_path(workspace, "/auth/me"))
    except ProblemError as problem:
        if problem.status in (401, 403):
            raise SignInRequiredError("/console/sign-in", "expired") from None
        raise
    if me["mfa_required"]:
        raise SignInRequiredError("/console/mfa")
    return Desk(api, workspace, me["actor"], me["role"], frozenset(me["permissions"]))


Staff = Annotated[Desk, Depends(desk)]


def keep_session(response: Response, workspace: str, token: str, seconds: int) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=seconds, **COOKIE)  # type: ignore[arg-type]
    response.set_cookie(WORKSPACE_COOKIE, workspace, max_age=30 * 86400, **COOKIE)  # type: ignore[arg-type]


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
