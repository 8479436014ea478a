"""Page plumbing: templates, security headers, cookies and CSRF. Every page answers with a strict
Content-Security-Policy (no inline script or style); every form carries a CSRF token that must match the
cookie (double submit) and comes from our own origin; cookies are Secure, HttpOnly and SameSite=Strict."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData

from obhut.console.client import ProblemError

HERE = Path(__file__).parent
PAGES = ("/console", "/privacy")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes browsers send `Origin: null` on forms
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
CSRF_COOKIE = "__Host-obhut-csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
COOKIE = {"secure": True, "httponly": True, "samesite": "strict", "path": "/"}

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(("html",)),
    trim_blocks=True,
    lstrip_blocks=True,
)


async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Headers for the pages only: the API docs page loads its own assets and keeps FastAPI's defaults."""
    response = await call_next(request)
    if request.url.path.startswith(PAGES):
        response.headers.update(HEADERS)
        if not request.url.path.startswith("/console/static"):
            response.headers["Cache-Control"] = "no-store"
    return response


def csrf_token(request: Request) -> str:
    """The token forms carry: the cookie's, or a new one that `render` sets as the cookie."""
    found = request.cookies.get(CSRF_COOKIE)
    if found is None:
        found = getattr(request.state, "csrf", None) or secrets.token_urlsafe(32)
        request.state.csrf = found
    return found


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise ProblemError(
            403, "Refused", "This form was sent from another site; open the page again and send it from there."
        )


def _same_token(request: Request, sent: str) -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not sent or not cookie or not hmac.compare_digest(sent, cookie):
        raise ProblemError(
            403, "Refused", "The form has expired or was not sent from this page; reload the page and try again."
        )


async def checked_form(request: Request) -> FormData:
    """The posted form, after the CSRF checks: our origin, and a token equal to the cookie's."""
    _same_origin(request)
    form = await request.form()
    _same_token(request, str(form.get(CSRF_FIELD, "")))
    return form


async def checked_json(request: Request) -> dict[str, Any]:
    """A script's JSON body, after the same checks: the token comes in the `X-CSRF-Token` header."""
    _same_origin(request)
    _same_token(request, request.headers.get(CSRF_HEADER, ""))
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ProblemError(400, "Bad request", "The request must be a JSON object; reload the page and try again.")
    return body


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    token = csrf_token(request)
    context.setdefault("path", request.url.path)
    html = templates.get_template(name).render(request=request, csrf=token, **context)
    response = HTMLResponse(html, status_code=status)
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(CSRF_COOKIE, token, **COOKIE)  # type: ignore[arg-type]
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
