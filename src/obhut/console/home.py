"""The dashboard: where the console opens."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from obhut.console.desk import Staff
from obhut.console.web import render

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("")
async def dashboard(request: Request, desk: Staff) -> HTMLResponse:
    return render(request, "console/home.html", desk=desk)
