"""Suspicious access over HTTP: scan days of the log, list alerts, acknowledge and resolve them (each change
recorded in the log), and the access review: what each role used, and what nobody used. `oversight:read`."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from obhut.access.dependencies import CurrentPrincipal, policies
from obhut.access.rules import Effect, Permission
from obhut.audit import alerts, rules
from obhut.audit.dependencies import AuditTrail
from obhut.audit.models import AuditAlert
from obhut.audit.service import Event
from obhut.container import container_of
from obhut.kit.clock import now
from obhut.kit.web import DbSession
from obhut.vault.keyring import Keyring

router = APIRouter(prefix="/workspaces/{workspace_id}/audit", tags=["audit"])


class ScanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: list[date] = Field(default_factory=list, max_length=62, description="UTC days; default today and yesterday")


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str = Field(description="acknowledged or resolved")
    reason: str | None = Field(None, max_length=2000, description="Needed to resolve")


class AlertOut(BaseModel):
    alert_id: str
    actor: str
    role: str
    day: str
    severity: str
    score: int
    factors: list[dict[str, Any]] = Field(description="What contributed, the largest first")
    detectors: list[str]
    status: str
    reason: str | None = Field(description="Why it was resolved; only in the answer about one alert (a logged read)")
    has_reason: bool
    updated_at: datetime
    updated_by: str | None

    @classmethod
    def of(cls, row: AuditAlert, keyring: Keyring | None = None) -> AlertOut:
        """`keyring`: to unseal the reason (it may name people); lists leave it sealed."""
        return cls(
            alert_id=row.alert_id,
            actor=row.actor,
            role=row.role,
            day=row.day,
            severity=row.severity,
            score=row.score,
            factors=json.loads(row.factors),
            detectors=row.detectors.split(),
            status=row.status,
            reason=alerts.reason_of(keyring, row) if keyring else None,
            has_reason=row.reason_sealed is not None,
            updated_at=row.updated_at,
            updated_by=row.updated_by,
        )


class ReviewOut(BaseModel):
    days: int
    suggestions: list[dict[str, str]] = Field(description="Allowed reveals nobody used: candidates to mask")
    usage: dict[str, dict[str, Any]] = Field(description="Per role: staff seen, entries per action, fields")


@router.post("/alerts/scan")
def scan(
    workspace_id: str, body: ScanIn, request: Request, session: DbSession, principal: CurrentPrincipal
) -> list[AlertOut]:
    """Runs the detectors over the days given; answers the new alerts (also sent to the alert webhook)."""
    principal.require(Permission.OVERSIGHT)
    today = now().date()
    created = alerts.scan(session, workspace_id, body.days or [today - timedelta(days=1), today])
    container = container_of(request)
    alerts.publish(session, created, container.alert_webhook)
    return [AlertOut.of(row) for row in created]


@router.get("/alerts")
def list_alerts(
    workspace_id: str,
    session: DbSession,
    principal: CurrentPrincipal,
    status: Annotated[str | None, Query(pattern="^(open|acknowledged|resolved)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertOut]:
    """The newest alerts first; a resolved one's reason stays sealed here (read the alert for it)."""
    principal.require(Permission.OVERSIGHT)
    return [AlertOut.of(row) for row in alerts.listed(session, workspace_id, status, limit)]


@router.get("/alerts/{alert_id}")
def read_alert(
    workspace_id: str,
    alert_id: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
) -> AlertOut:
    """One alert with its reason, unsealed; the read is in the access log (the reason may name people)."""
    principal.require(Permission.OVERSIGHT)
    keyring = container_of(request).vault.open(session, workspace_id)
    row = alerts.found(session, workspace_id, alert_id)
    trail.record(Event(rules.action("api", "alert", "read"), target=f"alert:{alert_id}"))
    return AlertOut.of(row, keyring)


@router.post("/alerts/{alert_id}")
def change_alert(
    workspace_id: str,
    alert_id: str,
    body: ChangeIn,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
) -> AlertOut:
    """Acknowledge (someone looks into it) or resolve (with the reason)."""
    principal.require(Permission.OVERSIGHT)
    keyring = container_of(request).vault.open(session, workspace_id)
    row = alerts.change(session, keyring, workspace_id, alert_id, body.status, body.reason, principal.actor)
    trail.record(Event(rules.action("api", "alert", body.status), target=f"alert:{alert_id}"))
    return AlertOut.of(row, keyring)


@router.get("/review")
def access_review(
    workspace_id: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    days: Annotated[int, Query(ge=1, le=366)] = 90,
) -> ReviewOut:
    """Least privilege from use: per role, what was used in the last `days` days, and what nobody used."""
    principal.require(Permission.OVERSIGHT)
    decider = policies(request)
    snapshot = decider.snapshot(session, workspace_id)
    reveals = {
        role: {
            purpose: [f for f, d in snapshot.policy.plan(role, purpose).items() if d.effect is Effect.REVEAL]
            for purpose in decider.purposes(session, workspace_id)
        }
        for role in snapshot.roles
    }
    suggestions, usage = alerts.review(session, workspace_id, reveals, days)
    return ReviewOut(
        days=days,
        suggestions=[{"role": s.role, "purpose": s.purpose, "field": s.field, "text": s.text} for s in suggestions],
        usage={
            role: {"staff": u.staff, "actions": dict(u.actions), "fields": {k: dict(v) for k, v in u.fields.items()}}
            for role, u in usage.items()
        },
    )
