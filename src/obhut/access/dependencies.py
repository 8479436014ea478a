from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from obhut.access import service
from obhut.access.models import AdminToken
from obhut.kit.web import DbSession

_bearer = HTTPBearer(auto_error=False, description="An admin token from 'obhut admin token create'")


def _admin(
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    workspace_id: str | None = None,
) -> AdminToken:
    return service.authenticate(session, credentials.credentials if credentials else None, workspace_id)


Admin = Annotated[AdminToken, Depends(_admin)]
