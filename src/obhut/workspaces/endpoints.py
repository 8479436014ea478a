from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict

from obhut.access.dependencies import Admin, CurrentPrincipal
from obhut.access.rules import Permission
from obhut.access.service import ALL_WORKSPACES
from obhut.kit.errors import ForbiddenError
from obhut.kit.web import DbSession
from obhut.vault.service import Vault
from obhut.workspaces import service

router = APIRouter(prefix="/workspaces", tags=["workspaces"])


class WorkspaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workspace_id: str
    name: str | None = None
    key_provider: str = "local"
    default_region: str = "DE"


class WorkspaceOut(BaseModel):
    workspace_id: str
    name: str
    default_region: str
    created_at: datetime


class KeyVersionOut(BaseModel):
    version: int
    provider: str
    key_ref: str
    origin: str
    state: str
    created_at: datetime
    retired_at: datetime | None
    revoked_at: datetime | None
    data_keys: int


def _vault(request: Request) -> Vault:
    vault: Vault = request.app.state.container.vault
    return vault


@router.post("", status_code=status.HTTP_201_CREATED)
def create_workspace(body: WorkspaceIn, request: Request, session: DbSession, admin: Admin) -> WorkspaceOut:
    if admin.workspace_id != ALL_WORKSPACES:
        raise ForbiddenError("creating workspaces needs an admin token for every workspace, not one limited to one")
    workspace = service.create(
        session,
        _vault(request),
        body.workspace_id,
        name=body.name,
        key_provider=body.key_provider,
        default_region=body.default_region,
    )
    return WorkspaceOut.model_validate(workspace, from_attributes=True)


@router.get("/{workspace_id}/keys")
def key_status(
    workspace_id: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> list[KeyVersionOut]:
    """Each key version: provider, state, and how many data keys it wraps (for key managers)."""
    principal.require(Permission.KEYS_MANAGE)
    return [
        KeyVersionOut.model_validate(v, from_attributes=True) for v in _vault(request).status(session, workspace_id)
    ]
