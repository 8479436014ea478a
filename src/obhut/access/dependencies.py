"""FastAPI dependencies: who is calling, whether they may, and the read plan for personal data.
Every endpoint that returns customer data takes `Plan`; the architecture tests check that."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from obhut.access import service
from obhut.access.policies import PolicyService
from obhut.access.rules import Permission, ReadPlan
from obhut.access.service import ALL_WORKSPACES, Principal
from obhut.kit.errors import ForbiddenError, ObhutError
from obhut.kit.web import DbSession

_bearer = HTTPBearer(auto_error=False, description="A session token, an API token or a bootstrap admin token")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def policies(request: Request) -> PolicyService:
    found: PolicyService = request.app.state.container.policies
    return found


def _authenticated(request: Request, session: DbSession, credentials: Bearer) -> Principal:
    """Any valid credential for the workspace in the path; a second factor is not yet required."""
    workspace_id = request.path_params.get("workspace_id")
    token = credentials.credentials if credentials else None
    if workspace_id is None:  # platform-level endpoints: only an all-workspace admin token
        principal = service.authenticate(session, token, {})
        if principal.workspace_id != ALL_WORKSPACES:
            raise ForbiddenError("this needs an admin token for every workspace, not one limited to one")
        return principal
    roles = policies(request).snapshot(session, workspace_id).roles
    principal = service.authenticate(session, token, roles)
    if not principal.covers(workspace_id):
        raise service.unauthenticated()
    if principal.workspace_id == ALL_WORKSPACES:
        return Principal(workspace_id, principal.actor, principal.role, principal.permissions, principal.amr)
    return principal


Authenticated = Annotated[Principal, Depends(_authenticated)]


def _principal(request: Request, session: DbSession, principal: Authenticated) -> Principal:
    """The caller, with a second factor where the workspace or the caller's role requires one."""
    policies(request).check_mfa(session, principal)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(_principal)]


def requires(permission: Permission) -> object:
    def check(principal: CurrentPrincipal) -> Principal:
        principal.require(permission)
        return principal

    return Depends(check)


def read_plan(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    purpose: Annotated[
        str | None, Query(description="Why the data is needed (a purpose key); without one, values are masked")
    ] = None,
    ticket: Annotated[str | None, Query(max_length=100, description="A ticket or case reference")] = None,
) -> ReadPlan:
    """The decision for this read: every field revealed, masked or denied for the caller's role and purpose.
    A refusal (no such purpose, a ticket missing, no permission) is recorded through the hook the application
    installed (`app.state.refused_read`: the access log), then answered."""
    try:
        return policies(request).plan(session, principal, purpose, ticket)
    except ObhutError:
        hook: RefusedRead | None = getattr(request.app.state, "refused_read", None)
        if hook is not None:
            hook(request, principal, purpose, ticket)
        raise


# Records a read the plan refused; installed by the application (the access log), so that access depends on no
# domain that depends on it.
RefusedRead = Callable[[Request, Principal, str | None, str | None], None]


Plan = Annotated[ReadPlan, Depends(read_plan)]
Admin = Annotated[Principal, Depends(_authenticated)]  # platform endpoints (workspace creation)
