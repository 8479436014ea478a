"""Puts the console and the privacy centre on the application: routes, static files, headers, error pages."""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from obhut.console import (
    alerts,
    audit,
    consent,
    customers,
    home,
    keys,
    passkeys,
    privacy,
    requests,
    retention,
    sign_in,
    staff,
)
from obhut.console.client import ProblemError
from obhut.console.desk import SignInRequiredError, end_session
from obhut.console.web import HERE, redirect, render, security_headers
from obhut.console.words import WORDS

ROUTERS = (
    sign_in.router, passkeys.router, home.router, customers.router, privacy.router, audit.router, alerts.router,
    requests.router, retention.router, keys.router, staff.router, consent.router,
)  # fmt: skip


def _sign_in_needed(_request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequiredError)
    response = redirect(error.to + (f"?reason={error.reason}" if error.reason else ""))
    if error.reason:
        end_session(response)
    return response


def _problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, ProblemError)
    if not request.url.path.startswith("/privacy"):
        return render(request, "console/error.html", error.status, problem=error)
    language = privacy.language(request)
    words = WORDS[language]
    message = words["no_link"] if error.status == HTTPStatus.UNAUTHORIZED else error.detail
    return render(request, "privacy/error.html", error.status, lang=language, w=words, message=message)


def install(app: FastAPI, workspace: str = "") -> None:
    """`workspace`: what the sign-in form suggests (the demo workspace on a development machine)."""
    app.state.console_workspace = workspace
    app.middleware("http")(security_headers)
    app.add_exception_handler(SignInRequiredError, _sign_in_needed)
    app.add_exception_handler(ProblemError, _problem)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for router in ROUTERS:
        app.include_router(router)
