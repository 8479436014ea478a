"""Alerts from the detectors: scanning days of the log, storing one alert per staff member and day, the
lifecycle (open -> acknowledged -> resolved with a reason), and the access review from recorded use."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from obhut.audit import detectors
from obhut.audit.adapters.webhook import AlertWebhook
from obhut.audit.models import AuditAlert, AuditEntry
from obhut.kit.clock import now
from obhut.kit.db import after_commit
from obhut.kit.errors import ConflictError, FieldErrors, NotFoundError
from obhut.kit.ids import new_id
from obhut.vault.keyring import Keyring

HISTORY_DAYS = 35  # the baselines' window before the first day scanned
STATUSES = ("open", "acknowledged", "resolved")
_COLUMNS = ("actor", "role", "at", "action", "outcome", "categories", "returned", "purpose", "ticket", "search_kind")


def activities(session: Session, workspace_id: str, start: date, end: date) -> list[detectors.Activity]:
    """The log's staff activity from `start` up to and excluding `end` (UTC days)."""
    first = datetime.combine(start, time(), UTC)
    last = datetime.combine(end, time(), UTC)
    query = select(*(getattr(AuditEntry, c) for c in _COLUMNS), AuditEntry.count).where(
        AuditEntry.workspace_id == workspace_id,
        AuditEntry.at >= first,
        AuditEntry.at < last,
        AuditEntry.actor.like("staff:%"),
    )
    return [detectors.Activity.from_mapping(dict(row)) for row in session.execute(query).mappings()]


def scan(session: Session, workspace_id: str, days: Sequence[date]) -> list[AuditAlert]:
    """Runs the detectors over `days` with the weeks before them as history. New findings become open
    alerts; a day scanned again updates its alert's score and factors (a day still under way grows), and
    reopens a resolved alert whose score grew. Answers the new and the reopened alerts."""
    if not days:
        return []
    found = detectors.detect(
        activities(session, workspace_id, min(days) - timedelta(days=HISTORY_DAYS), max(days) + timedelta(days=1)),
        days=sorted(days),
    )
    existing = {
        (a.actor, a.day): a
        for a in session.scalars(
            select(AuditAlert).where(
                AuditAlert.workspace_id == workspace_id, AuditAlert.day.in_([d.isoformat() for d in days])
            )
        )
    }
    created = []
    moment = now()
    for alert in found:
        row = existing.get((alert.actor, alert.day.isoformat()))
        if row is None:
            row = AuditAlert(
                workspace_id=workspace_id,
                alert_id=new_id(),
                actor=alert.actor,
                role=alert.role,
                day=alert.day.isoformat(),
                status="open",
                reason_sealed=None,
                created_at=moment,
                updated_by=None,
            )
            session.add(row)
            created.append(row)
        elif alert.score <= row.score:
            continue
        elif row.status == "resolved":  # worse than when it was resolved: it needs looking at again
            row.status, row.updated_by = "open", None
            created.append(row)
        row.severity, row.score = alert.severity, alert.score
        row.factors = json.dumps([asdict(f) for f in alert.factors])
        row.detectors = " ".join(alert.detectors)
        row.updated_at = moment
    session.flush()
    return created


def publish(session: Session, created: Sequence[AuditAlert], webhook: AlertWebhook | None) -> None:
    """New alerts go to the webhook once the transaction that stored them has committed."""
    if webhook is not None:
        for row in created:
            after_commit(session, partial(webhook.publish, row.workspace_id, payload(row)))


def active_workspaces(session: Session, since: datetime) -> list[str]:
    query = select(AuditEntry.workspace_id).where(AuditEntry.at >= since).distinct()
    return list(session.scalars(query))


def listed(session: Session, workspace_id: str, status: str | None, limit: int) -> list[AuditAlert]:
    query = select(AuditAlert).where(AuditAlert.workspace_id == workspace_id)
    if status is not None:
        query = query.where(AuditAlert.status == status)
    return list(session.scalars(query.order_by(AuditAlert.day.desc(), AuditAlert.score.desc()).limit(limit)))


def found(session: Session, workspace_id: str, alert_id: str) -> AuditAlert:
    alert = session.get(AuditAlert, (workspace_id, alert_id))
    if alert is None:
        raise NotFoundError(f"no alert {alert_id} in workspace '{workspace_id}'")
    return alert


def _context(alert: AuditAlert) -> str:
    return f"alert-reason:{alert.workspace_id}:{alert.alert_id}"


def change(
    session: Session, keyring: Keyring, workspace_id: str, alert_id: str, status: str, reason: str | None, actor: str
) -> AuditAlert:
    """Acknowledges or resolves an alert. Resolving needs a reason (kept sealed: it may name people)."""
    alert = found(session, workspace_id, alert_id)
    errors = FieldErrors()
    if status not in STATUSES[1:]:
        errors.add("status", "must be acknowledged or resolved")
    if status == "resolved" and not (reason or "").strip():
        errors.add("reason", "say why the alert is resolved (a mistake, an explained busy day, action taken)")
    errors.raise_if_any()
    if alert.status == "resolved":
        raise ConflictError("the alert is resolved already")
    alert.status, alert.updated_at, alert.updated_by = status, now(), actor
    if reason:
        alert.reason_sealed = keyring.seal_secret(_context(alert), reason.strip().encode())
    return alert


def reason_of(keyring: Keyring, alert: AuditAlert) -> str | None:
    return keyring.open_secret(_context(alert), alert.reason_sealed).decode() if alert.reason_sealed else None


def payload(alert: AuditAlert) -> dict[str, Any]:
    """What a webhook receives about a new alert: no personal data of customers, only the staff member's id."""
    factors: list[dict[str, Any]] = json.loads(alert.factors)
    return {
        "alert_id": alert.alert_id,
        "workspace_id": alert.workspace_id,
        "actor": alert.actor,
        "role": alert.role,
        "day": alert.day,
        "severity": alert.severity,
        "score": alert.score,
        "factors": factors,
    }


def review(
    session: Session, workspace_id: str, reveals: Mapping[str, Mapping[str, Iterable[str]]], days: int
) -> tuple[list[detectors.Suggestion], dict[str, detectors.RoleUsage]]:
    """Which permissions and reveals each role used in the last `days` days, and what nobody used."""
    today = now().date()
    seen = activities(session, workspace_id, today - timedelta(days=days - 1), today + timedelta(days=1))
    return detectors.review(seen, reveals, days, today), detectors.usage(seen, days, today)
