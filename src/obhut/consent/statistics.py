"""Consent in numbers, for dashboards: per purpose, how many customers are in each state now, and per UTC day
how many events of each kind were recorded. Counts only, never a customer. A cell that would describe 1 to 9
customers is suppressed (null, and named as suppressed), so that no number singles out fewer than ten people;
an event cell counts events but is judged by the distinct customers behind them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import String, and_, case, distinct, exists, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement

from obhut.consent.models import ConsentEvent, ConsentPurpose, ConsentState
from obhut.consent.rules import RESTRICTION, Kind
from obhut.customers.models import Customer
from obhut.kit.clock import now

MIN_CUSTOMERS = 10
KINDS = tuple(kind.value for kind in Kind)  # the states and the event kinds alike


@dataclass(frozen=True)
class Cells:
    """Counts by kind; None where suppressed, and the suppressed kinds named."""

    counts: dict[str, int | None]
    suppressed: list[str]


@dataclass(frozen=True)
class Day:
    day: date
    events: Cells


@dataclass(frozen=True)
class PurposeStatistics:
    purpose: str
    states: Cells
    days: list[Day]


@dataclass(frozen=True)
class Statistics:
    since: date
    until: date
    purposes: list[PurposeStatistics]


def suppressed(found: Mapping[str, tuple[int, int]]) -> Cells:
    """`found`: kind -> (count, distinct customers), a kind not found counting 0. A count stays 0 or is shown
    when at least MIN_CUSTOMERS customers are behind it; otherwise it becomes None."""
    counts: dict[str, int | None] = {}
    hidden = []
    for kind in KINDS:
        count, customers = found.get(kind, (0, 0))
        if 0 < customers < MIN_CUSTOMERS:
            counts[kind] = None
            hidden.append(kind)
        else:
            counts[kind] = count
    return Cells(counts, hidden)


def compute(session: Session, workspace_id: str, days: int) -> Statistics:
    """The current states per purpose and the events of the last `days` UTC days (today included)."""
    until = now().date()
    since = until - timedelta(days=days - 1)
    states = _states(session, workspace_id)
    events = _events(session, workspace_id, datetime.combine(since, time(), UTC))
    purposes = session.scalars(
        select(ConsentPurpose.key).where(ConsentPurpose.workspace_id == workspace_id).order_by(ConsentPurpose.key)
    ).all()
    calendar = [since + timedelta(days=n) for n in range(days)]
    return Statistics(
        since,
        until,
        [
            PurposeStatistics(
                key,
                suppressed(states.get(key, {})),
                [Day(day, suppressed(events.get((key, day.isoformat()), {}))) for day in calendar],
            )
            for key in purposes
        ],
    )


Found = dict[str, tuple[int, int]]


def _states(session: Session, workspace_id: str) -> dict[str, Found]:
    """Customers per purpose and state. A grant past its end counts as expired (as the check decides) before
    the expiry job has recorded it; erased customers no longer count."""
    state = case(
        (and_(ConsentState.kind == Kind.GRANTED.value, ConsentState.until <= now()), Kind.EXPIRED.value),
        else_=ConsentState.kind,
    )
    live = exists().where(
        Customer.workspace_id == ConsentState.workspace_id,
        Customer.id == ConsentState.customer_id,
        Customer.erased_at.is_(None),
    )
    current = (
        select(ConsentState.purpose_key.label("purpose"), state.label("state"))
        .where(ConsentState.workspace_id == workspace_id, ConsentState.purpose_key != RESTRICTION, live)
        .subquery()
    )
    found: dict[str, Found] = {}
    query = select(current.c.purpose, current.c.state, func.count()).group_by(current.c.purpose, current.c.state)
    for purpose, kind, count in session.execute(query):
        found.setdefault(purpose, {})[kind] = (count, count)  # one state row per customer
    return found


def _events(session: Session, workspace_id: str, since: datetime) -> dict[tuple[str, str], Found]:
    """Events and the distinct customers behind them, per purpose, UTC day ('YYYY-MM-DD') and kind."""
    day = _UtcDay(ConsentEvent.at)
    query = (
        select(
            ConsentEvent.purpose_key,
            day,
            ConsentEvent.kind,
            func.count(),
            func.count(distinct(ConsentEvent.customer_id)),
        )
        .where(ConsentEvent.workspace_id == workspace_id, ConsentEvent.at >= since)
        .group_by(ConsentEvent.purpose_key, day, ConsentEvent.kind)
    )
    found: dict[tuple[str, str], Found] = {}
    for purpose, on, kind, count, customers in session.execute(query):
        found.setdefault((purpose, str(on)), {})[kind] = (count, customers)
    return found


class _UtcDay(FunctionElement[str]):
    """The UTC calendar day of a stored time as 'YYYY-MM-DD', on SQLite and PostgreSQL alike."""

    type = String()
    name = "utc_day"
    inherit_cache = True


@compiles(_UtcDay)
def _utc_day_sqlite(element: _UtcDay, compiler: Any, **kw: Any) -> str:
    """SQLite keeps UTCDateTime as UTC text: its date() is the UTC day."""
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(_UtcDay, "postgresql")
def _utc_day_postgresql(element: _UtcDay, compiler: Any, **kw: Any) -> str:
    """Read in UTC whatever the session's time zone is."""
    return f"to_char({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
