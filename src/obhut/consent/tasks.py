"""Scheduled consent work: record `expired` for time-limited consents that have ended. The check at the
moment of use refuses them already; this makes the ledger (and the customer's receipts) say so."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from obhut.consent import service
from obhut.consent.models import ConsentState
from obhut.consent.rules import Kind
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.vault.service import Vault


def expire_all(sessions: sessionmaker[Session], vault: Vault) -> int:
    """Every workspace's ended consents, one transaction per workspace; how many were recorded."""
    with sessions() as session:
        workspaces = session.scalars(
            select(ConsentState.workspace_id)
            .where(ConsentState.kind == Kind.GRANTED.value, ConsentState.until <= now())
            .distinct()
        ).all()
    total = 0
    for workspace_id in workspaces:
        with unit_of_work(sessions) as session:
            total += service.expire_due(session, vault.open(session, workspace_id), workspace_id)
    return total
