"""Suspicious access at the console: alerts by status, an alert's severity, score and what contributed,
acknowledge and resolve (with the reason), a scan on request, and the access review's suggestions."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from obhut.console.client import ProblemError
from obhut.console.desk import Desk, Staff
from obhut.console.web import checked_form, redirect, render

router = APIRouter(prefix="/console/alerts", include_in_schema=False)
STATUSES = ("open", "acknowledged", "resolved")
REVIEW_DAYS = (30, 90, 180, 365)
CHANGED = {"acknowledged": "The alert is acknowledged.", "resolved": "The alert is resolved."}


@router.get("")
async def index(
    request: Request,
    desk: Staff,
    status: Annotated[str, Query(pattern="^(|open|acknowledged|resolved)$")] = "open",
    scanned: Annotated[int | None, Query(ge=0)] = None,
) -> HTMLResponse:
    found = await desk.api.get(desk.at("/audit/alerts"), status=status, limit=1000)
    flash = "" if scanned is None else f"Scan finished: {scanned} new or reopened alert{'s' * (scanned != 1)}."
    return render(request, "console/alerts/index.html", desk=desk, alerts=found, chosen=status,
                  statuses=STATUSES, flash=flash)  # fmt: skip


@router.post("/scan")
async def scan(request: Request, desk: Staff) -> Response:
    """Runs the detectors over today and yesterday."""
    await checked_form(request)
    created = await desk.api.send("POST", desk.at("/audit/alerts/scan"), {})
    return redirect(f"/console/alerts?scanned={len(created)}")


@router.get("/review")
async def review(
    request: Request, desk: Staff, days: Annotated[int, Query(ge=1, le=366)] = REVIEW_DAYS[1]
) -> HTMLResponse:
    found = await desk.api.get(desk.at("/audit/review"), days=days)
    return render(request, "console/alerts/review.html", desk=desk, review=found, choices=REVIEW_DAYS)


async def _detail(request: Request, desk: Desk, alert_id: str, status: int = 200, **extra: Any) -> HTMLResponse:
    alert = await desk.api.get(desk.at(f"/audit/alerts/{alert_id}"))
    return render(request, "console/alerts/detail.html", status, desk=desk, alert=alert, **extra)


@router.get("/{alert_id}")
async def detail(
    request: Request, desk: Staff, alert_id: str, changed: Annotated[str, Query(max_length=20)] = ""
) -> HTMLResponse:
    return await _detail(request, desk, alert_id, flash=CHANGED.get(changed, ""))


@router.post("/{alert_id}")
async def change(request: Request, desk: Staff, alert_id: str) -> Response:
    """Acknowledge, or resolve with the reason; the API's refusal is shown on the alert's page."""
    form = await checked_form(request)
    status, reason = str(form.get("status", "")), str(form.get("reason", "")).strip()
    body = {"status": status} | ({"reason": reason} if reason else {})
    try:
        await desk.api.send("POST", desk.at(f"/audit/alerts/{alert_id}"), body)
    except ProblemError as problem:
        if problem.status not in (HTTPStatus.CONFLICT, HTTPStatus.UNPROCESSABLE_ENTITY):
            raise
        errors = problem.errors or {"": problem.detail}
        return await _detail(request, desk, alert_id, problem.status, errors=errors, reason=reason)
    return redirect(f"/console/alerts/{alert_id}?changed={status}")
