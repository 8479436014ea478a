"""What the console's forms share: reading a field, filling a form in again, sending a change and showing the
API's answer (its message with the field errors) or the confirmation after a redirect."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from obhut.console.client import ProblemError
from obhut.console.desk import Desk
from obhut.console.web import render


def said(problem: ProblemError) -> str:
    """The API's message, with its field errors, as one sentence for an alert."""
    if not problem.errors:
        return problem.detail
    shown = (
        v if v.startswith(f"{k}:") else f"{k.removeprefix('path/') or 'input'}: {v}" for k, v in problem.errors.items()
    )
    return problem.detail + ": " + "; ".join(shown)


def text(form: FormData, name: str) -> str:
    return str(form.get(name, "")).strip()


def typed(form: FormData) -> dict[str, str]:
    """What was typed into a form, to fill it in again (never the CSRF token or a password)."""
    return {k: str(v) for k, v in form.items() if k not in ("csrf", "password")}


async def sent(desk: Desk, method: str, path: str, body: Any = None) -> ProblemError | None:
    """Sends a change to the API; the refusal, if any, for the page to show beside the form."""
    try:
        await desk.api.send(method, desk.at(path), body)
    except ProblemError as problem:
        return problem
    return None


def flash(messages: dict[str, str], done: str) -> str:
    """The confirmation a redirect after a change asked for (`?done=<key>`), if known."""
    return messages.get(done, "")


def page(request: Request, name: str, problem: ProblemError | None, **context: Any) -> HTMLResponse:
    """A page that may show the API's refusal of a change: its status, and its message as `error`."""
    return render(request, name, problem.status if problem else 200, error=said(problem) if problem else "", **context)
