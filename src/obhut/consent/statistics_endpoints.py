"""Consent statistics over HTTP, for dashboards: counts only, small counts suppressed. Needs `oversight:read`,
the read-only permission of those who answer for the processing (privacy officer, auditor): the numbers are
for accountability, and reading them changes nothing, so the catalogue's `policy:manage` would ask too much."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from obhut.access.dependencies import CurrentPrincipal
from obhut.access.rules import Permission
from obhut.audit import rules as audit
from obhut.audit.dependencies import AuditTrail
from obhut.audit.service import Event
from obhut.consent import statistics
from obhut.kit.web import DbSession

router = APIRouter(prefix="/workspaces/{workspace_id}/consent", tags=["consent"])


class CellsOut(BaseModel):
    counts: dict[str, int | None] = Field(description="By kind; null where fewer than 10 customers are behind it")
    suppressed: list[str] = Field(description="The kinds whose count is withheld")

    @classmethod
    def of(cls, cells: statistics.Cells) -> CellsOut:
        return cls(counts=cells.counts, suppressed=cells.suppressed)


class DayOut(BaseModel):
    day: date
    events: CellsOut


class PurposeStatisticsOut(BaseModel):
    purpose: str
    states: CellsOut = Field(description="Customers in each state now")
    days: list[DayOut] = Field(description="Events recorded per UTC day, oldest first")


class StatisticsOut(BaseModel):
    since: date
    until: date
    min_customers: int = Field(description="A count behind fewer customers than this (but not none) is withheld")
    purposes: list[PurposeStatisticsOut]


@router.get("/statistics")
def consent_statistics(
    workspace_id: str,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
    days: Annotated[int, Query(ge=1, le=366, description="UTC days back, today included")] = 30,
) -> StatisticsOut:
    """Per purpose, customers by consent state now, and consent events by kind per day."""
    principal.require(Permission.OVERSIGHT)
    found = statistics.compute(session, workspace_id, days)
    trail.record(Event(audit.action("api", "consent", "statistics"), target=f"days:{days}"))
    return StatisticsOut(
        since=found.since,
        until=found.until,
        min_customers=statistics.MIN_CUSTOMERS,
        purposes=[
            PurposeStatisticsOut(
                purpose=p.purpose,
                states=CellsOut.of(p.states),
                days=[DayOut(day=d.day, events=CellsOut.of(d.events)) for d in p.days],
            )
            for p in found.purposes
        ],
    )
