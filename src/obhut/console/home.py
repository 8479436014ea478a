"""The dashboard: where the console opens. Every role sees it; each panel only where the API lets the role
read what it counts (a refusal leaves the panel out). Counts only, small counts suppressed (see charts)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Awaitable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from obhut.console.charts import Chart, count_chart, exact_chart, rate
from obhut.console.client import ProblemError
from obhut.console.desk import Desk, Staff
from obhut.console.web import render

router = APIRouter(prefix="/console", include_in_schema=False)
T = TypeVar("T")
DAYS = 30
ENTRIES_READ = 10_000  # the most the access log answers at once
SEVERITIES = ("high", "medium", "low")
OPEN_REQUESTS = ("received", "verified")


async def readable(call: Awaitable[T]) -> T | None:
    """The API's answer, or None where the role may not read it."""
    try:
        return await call
    except ProblemError as problem:
        if problem.status == HTTPStatus.FORBIDDEN:
            return None
        raise


@router.get("")
async def dashboard(request: Request, desk: Staff) -> HTMLResponse:
    moment = datetime.now(UTC)
    panels = {
        "consent": _consent(await readable(desk.api.get(desk.at("/consent/statistics"), days=DAYS))),
        "access": await _access(desk, moment),
        "alerts": _alerts(await readable(desk.api.get(desk.at("/audit/alerts"), status="open", limit=1000))),
        "requests": _requests(await readable(desk.api.get(desk.at("/requests"))), moment),
    }
    shown = {name: panel for name, panel in panels.items() if panel is not None}
    return render(request, "console/home.html", desk=desk, panels=shown, days=DAYS)


def _consent(statistics: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """Per purpose: the share of customers who consent now, and the share of grants among each day's events."""
    if statistics is None:
        return None
    found = []
    for purpose in statistics["purposes"]:
        days = tuple(
            replace(rate(day["events"]["counts"], "no events"), label=day["day"]) for day in purpose["days"]
        )  # oldest first
        chart = Chart(
            f"Consent for {purpose['purpose']}: grants among the consent events of each day, "
            f"{statistics['since']} to {statistics['until']}",
            "Day (UTC)", "Grants among the day's events", days,
        )  # fmt: skip
        now = rate(purpose["states"]["counts"], "no customers yet")
        found.append({"purpose": purpose["purpose"], "now": now, "chart": chart})
    return found


async def _access(desk: Desk, moment: datetime) -> dict[str, Any] | None:
    """Entries about customers in the last DAYS days per role, each judged by the customers behind it."""
    since = (moment - timedelta(days=DAYS)).isoformat()
    entries = await readable(desk.api.get(desk.at("/audit/entries"), since=since, limit=ENTRIES_READ))
    if entries is None:
        return None
    volume: Counter[str] = Counter()
    customers: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        if entry["customer"] is not None:
            volume[entry["role"]] += 1
            customers[entry["role"]].add(entry["customer"])
    rows = [(role.replace("_", " "), count, len(customers[role])) for role, count in sorted(volume.items())]
    chart = count_chart(f"Entries about customers by role, last {DAYS} days", "Role", "Entries", rows)
    return {"chart": chart, "capped": len(entries) >= ENTRIES_READ}


def _alerts(alerts: list[dict[str, Any]] | None) -> Chart | None:
    """Open alerts by severity: they are about staff, not customers, so every count is shown."""
    if alerts is None:
        return None
    by = Counter(alert["severity"] for alert in alerts)
    return exact_chart("Open alerts by severity", "Severity", "Open alerts", ((s, by[s]) for s in SEVERITIES))


def _requests(listing: dict[str, Any] | None, moment: datetime) -> Chart | None:
    """Open data-subject requests by deadline: overdue, due within seven days, later (one customer each)."""
    if listing is None:
        return None
    week = moment + timedelta(days=7)
    due: Counter[str] = Counter()
    for found in listing["requests"]:
        if found["status"] in OPEN_REQUESTS:
            deadline = datetime.fromisoformat(found["deadline"])
            due["overdue" if deadline < moment else "due this week" if deadline < week else "later"] += 1
    rows = ((name, due[name], None) for name in ("overdue", "due this week", "later"))
    return count_chart("Open data-subject requests by deadline", "Deadline", "Open requests", rows)
