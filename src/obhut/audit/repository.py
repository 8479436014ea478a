"""Queries over the access log."""

from __future__ import annotations

from sqlalchemy import Select, select

from obhut.audit.models import AuditEntry
from obhut.audit.schemas import EntryFilter


def entries(workspace_id: str, wanted: EntryFilter, subject: str | None) -> Select[AuditEntry]:
    """`subject`: the pseudonym to match (from `customer`, or computed from `customer_id`)."""
    query = select(AuditEntry).where(AuditEntry.workspace_id == workspace_id)
    if wanted.actor is not None:
        query = query.where(AuditEntry.actor == wanted.actor)
    if subject is not None:
        query = query.where(AuditEntry.subject == subject)
    if wanted.category is not None:
        query = query.where(AuditEntry.categories.contains(wanted.category))
    if wanted.purpose is not None:
        query = query.where(AuditEntry.purpose == wanted.purpose)
    if wanted.action is not None:
        query = query.where(AuditEntry.action == wanted.action)
    if wanted.since is not None:
        query = query.where(AuditEntry.at >= wanted.since)
    if wanted.until is not None:
        query = query.where(AuditEntry.at < wanted.until)
    return query.order_by(AuditEntry.at.desc(), AuditEntry.entry_id).limit(wanted.limit)


def at_position(workspace_id: str, seq: int) -> Select[AuditEntry]:
    return select(AuditEntry).where(AuditEntry.workspace_id == workspace_id, AuditEntry.seq == seq)
