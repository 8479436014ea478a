"""Administration of access: staff accounts, API tokens, roles, purposes, policy versions, break-glass review."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from obhut.access import service
from obhut.access.dependencies import CurrentPrincipal, policies
from obhut.access.models import Staff
from obhut.access.rules import Permission
from obhut.audit.dependencies import AuditTrail
from obhut.audit.rules import action
from obhut.audit.service import Event
from obhut.container import container_of
from obhut.kit.web import DbSession

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["access"])


class StaffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(max_length=254)
    display_name: str = Field("", max_length=200)
    role: str
    password: str = Field(max_length=1024)


class StaffOut(BaseModel):
    staff_id: str
    username: str
    display_name: str
    role: str
    totp: bool
    sso: bool
    disabled_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, staff: Staff) -> StaffOut:
        return cls(
            staff_id=staff.staff_id,
            username=staff.username,
            display_name=staff.display_name,
            role=staff.role,
            totp=staff.totp_confirmed,
            sso=staff.sso_subject is not None,
            disabled_at=staff.disabled_at,
            created_at=staff.created_at,
        )


class StaffChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str | None = None
    disabled: bool | None = None


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(max_length=200)
    role: str
    scopes: list[str]
    expires_in_days: int = 90


class TokenOut(BaseModel):
    token_id: str
    token: str | None = Field(None, description="Shown once, at creation")
    label: str
    role: str
    scopes: list[str]
    expires_at: datetime
    revoked_at: datetime | None = None


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    title: str = Field(max_length=200)
    permissions: list[str]


class PurposeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    title: str = Field(max_length=200)


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[dict[str, Any]] = Field(
        description="Each rule: role, target ('*', 'category:<c>' or 'field:<f>'), purpose ('*' or a key), "
        "effect (reveal, mask, deny) and optional mask (partial, hash, redact). The most specific rule wins; "
        "at equal specificity the more restrictive one. What no rule reveals is denied."
    )
    require_mfa_all: bool = False


class PolicyOut(BaseModel):
    version: int
    rules: list[dict[str, Any]]
    require_mfa_all: bool
    roles: dict[str, list[str]]
    purposes: dict[str, str]
    created_by: str
    created_at: datetime


class BreakGlassOut(BaseModel):
    event_id: str
    actor: str
    role: str
    customer_id: str
    purpose: str
    justification: str
    created_at: datetime
    reviewed_at: datetime | None


def _roles(request: Request, session: DbSession, workspace_id: str) -> dict[str, frozenset[Permission]]:
    return policies(request).snapshot(session, workspace_id).roles


@router.post("/staff", status_code=status.HTTP_201_CREATED, tags=["staff"])
def create_staff(
    workspace_id: str,
    body: StaffIn,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
) -> StaffOut:
    principal.require(Permission.STAFF_MANAGE)
    roles = _roles(request, session, workspace_id)
    staff = service.create_staff(
        session,
        workspace_id,
        username=body.username,
        display_name=body.display_name,
        role=body.role,
        roles=roles,
        password=body.password,
    )
    trail.record(Event(action("api", "staff", "create"), target=f"staff:{staff.staff_id}"))
    return StaffOut.of(staff)


@router.get("/staff", tags=["staff"])
def list_staff(workspace_id: str, session: DbSession, principal: CurrentPrincipal) -> list[StaffOut]:
    principal.require(Permission.STAFF_MANAGE)
    return [StaffOut.of(s) for s in service.list_staff(session, workspace_id)]


@router.patch("/staff/{staff_id}", tags=["staff"])
def change_staff(
    workspace_id: str,
    staff_id: str,
    body: StaffChange,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
) -> StaffOut:
    principal.require(Permission.STAFF_MANAGE)
    trail.record(Event(action("api", "staff", "change"), target=f"staff:{staff_id}"))
    staff = service.change_staff(
        session,
        workspace_id,
        staff_id,
        role=body.role,
        disabled=body.disabled,
        roles=_roles(request, session, workspace_id),
    )
    return StaffOut.of(staff)


@router.post("/tokens", status_code=status.HTTP_201_CREATED, tags=["tokens"])
def create_token(
    workspace_id: str,
    body: TokenIn,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
) -> TokenOut:
    principal.require(Permission.TOKENS_MANAGE)
    issued = service.issue_api_token(
        session,
        principal,
        label=body.label,
        role=body.role,
        scopes=body.scopes,
        days=body.expires_in_days,
        roles=_roles(request, session, workspace_id),
    )
    assert issued.expires_at is not None
    trail.record(Event(action("api", "token", "create"), target=f"token:{issued.token_id}"))
    return TokenOut(
        token_id=issued.token_id,
        token=issued.token,
        label=body.label,
        role=body.role,
        scopes=sorted(set(body.scopes)),
        expires_at=issued.expires_at,
    )


@router.get("/tokens", tags=["tokens"])
def list_tokens(workspace_id: str, session: DbSession, principal: CurrentPrincipal) -> list[TokenOut]:
    principal.require(Permission.TOKENS_MANAGE)
    return [
        TokenOut(
            token_id=t.token_id,
            label=t.label,
            role=t.role,
            scopes=t.scopes.split(),
            expires_at=t.expires_at,
            revoked_at=t.revoked_at,
        )
        for t in service.list_api_tokens(session, workspace_id)
    ]


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["tokens"])
def revoke_token(
    workspace_id: str, token_id: str, session: DbSession, principal: CurrentPrincipal, trail: AuditTrail
) -> Response:
    principal.require(Permission.TOKENS_MANAGE)
    trail.record(Event(action("api", "token", "revoke"), target=f"token:{token_id}"))
    service.revoke_api_token(session, workspace_id, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/policy", tags=["policy"])
def current_policy(workspace_id: str, request: Request, session: DbSession, principal: CurrentPrincipal) -> PolicyOut:
    """The policy in force, with the roles and purposes it refers to."""
    del principal  # any signed-in member may read what the rules are
    decider = policies(request)
    history = decider.history(session, workspace_id)
    if not history:
        decider.snapshot(session, workspace_id)
        history = decider.history(session, workspace_id)
    latest = history[-1]
    return PolicyOut(
        version=latest.version,
        rules=json.loads(latest.rules),
        require_mfa_all=latest.require_mfa_all,
        roles={name: sorted(p.value for p in perms) for name, perms in decider.roles(session, workspace_id).items()},
        purposes=decider.purposes(session, workspace_id),
        created_by=latest.created_by,
        created_at=latest.created_at,
    )


@router.put("/policy", tags=["policy"])
def replace_policy(
    workspace_id: str,
    body: PolicyIn,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
) -> PolicyOut:
    """A new policy version (the old ones stay); needs policy rights and a session with a second factor."""
    policies(request).set_policy(session, principal, body.rules, require_mfa_all=body.require_mfa_all)
    out = current_policy(workspace_id, request, session, principal)
    trail.record(Event(action("api", "policy", "change"), target=f"policy:{out.version}"))
    return out


@router.post("/roles", status_code=status.HTTP_201_CREATED, tags=["policy"])
def add_role(
    workspace_id: str,
    body: RoleIn,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
) -> PolicyOut:
    policies(request).add_role(session, principal, body.name, body.title, body.permissions)
    trail.record(Event(action("api", "role", "create"), target=f"role:{body.name}"))
    return current_policy(workspace_id, request, session, principal)


@router.post("/purposes", status_code=status.HTTP_201_CREATED, tags=["policy"])
def add_purpose(
    workspace_id: str,
    body: PurposeIn,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
) -> PolicyOut:
    policies(request).add_purpose(session, principal, body.key, body.title)
    trail.record(Event(action("api", "purpose", "create"), target=f"purpose:{body.key}"))
    return current_policy(workspace_id, request, session, principal)


@router.get("/break-glass", tags=["policy"])
def break_glass_events(
    workspace_id: str, request: Request, session: DbSession, principal: CurrentPrincipal, trail: AuditTrail
) -> list[BreakGlassOut]:
    """Every reveal beyond policy, with its justification (which may name people, so reading it is logged):
    for the privacy officer's review."""
    keyring = container_of(request).vault.open(session, workspace_id)
    events = policies(request).break_glass_events(session, keyring, principal)
    trail.record(Event(action("api", "break-glass", "list"), count=len(events)))
    return [
        BreakGlassOut(
            event_id=row.event_id,
            actor=row.staff_id,
            role=row.role,
            customer_id=row.customer_id,
            purpose=row.purpose,
            justification=text,
            created_at=row.created_at,
            reviewed_at=row.reviewed_at,
        )
        for row, text in events
    ]


@router.post("/break-glass/{event_id}/reviewed", status_code=status.HTTP_204_NO_CONTENT, tags=["policy"])
def review_break_glass(
    event_id: str, request: Request, session: DbSession, principal: CurrentPrincipal, trail: AuditTrail
) -> Response:
    policies(request).review_break_glass(session, principal, event_id)
    trail.record(Event(action("api", "break-glass", "review"), target=f"break-glass:{event_id}"))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
