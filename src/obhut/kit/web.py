"""Web plumbing shared by every domain's endpoints: the request's unit of work and problem details."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from obhut.kit.db import unit_of_work
from obhut.kit.errors import ObhutError, ValidationFailedError

PROBLEM_BASE = "https://obhut.example.com/problems/"
log = logging.getLogger("obhut.api")


def _session(request: Request) -> Iterator[Session]:
    with unit_of_work(request.app.state.session_factory) as session:
        yield session


# scope="function": the commit happens before the response is sent, so a failed commit is an error reply.
DbSession = Annotated[Session, Depends(_session, scope="function")]


def problem(status: int, kind: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": PROBLEM_BASE + kind, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def _domain_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ObhutError)
    extra: dict[str, Any] = {}
    if isinstance(error, ValidationFailedError):
        extra["errors"] = [{"pointer": f"/{e.field}", "detail": e.message, "code": e.code} for e in error.errors]
    return problem(error.status, error.kind, error.title, error.detail, **extra)


def _request_error(_request: Request, error: Exception) -> JSONResponse:
    """Pydantic's errors quote the input; ours keep only where and what, never the value."""
    assert isinstance(error, RequestValidationError)
    errors = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ()) if part != "body"]
        errors.append({"pointer": "/" + "/".join(location), "detail": str(item.get("msg")), "code": item.get("type")})
    return problem(422, "validation", "Invalid input", f"{len(errors)} problem(s) in the request", errors=errors)


def _http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    return problem(error.status_code, "http", str(error.detail), str(error.detail))


def _unexpected(_request: Request, error: Exception) -> JSONResponse:
    log.error("unexpected %s", type(error).__name__)  # never the message: it could hold data
    return problem(500, "internal", "Internal error", "an unexpected error occurred; nothing was changed")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ObhutError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
