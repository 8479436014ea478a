"""Staff and roles: staff members (add, change role, disable), the roles with their permissions, the access
policy in force (role x data category x purpose), and new roles and purposes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from obhut.access.rules import Permission
from obhut.console.client import ProblemError
from obhut.console.desk import Desk, Staff
from obhut.console.forms import flash, page, sent, text, typed
from obhut.console.web import checked_form, redirect

router = APIRouter(prefix="/console/staff", include_in_schema=False)
DONE = {
    "added": "The staff member was added. They sign in with the initial password and set up a second factor.",
    "changed": "The staff member was changed.",
    "role": "The role was added; give it rules in the access policy.",
    "purpose": "The purpose was added.",
}


async def _page(
    request: Request, desk: Desk, *, problem: ProblemError | None = None, form: str = "", values: Any = None,
    done: str = "",
) -> HTMLResponse:  # fmt: skip
    """The page; after a refusal, `form` names the form it concerns and `values` what was typed into it."""
    staff = await desk.api.get(desk.at("/staff"))
    policy = await desk.api.get(desk.at("/policy"))
    rules = sorted(policy["rules"], key=lambda r: (r["role"], r["target"], r["purpose"]))
    return page(
        request, "console/staff/index.html", problem, desk=desk, staff=staff, policy=policy, rules=rules,
        permissions=[p.value for p in Permission], flash=flash(DONE, done), failed=form, values=values or {},
    )  # fmt: skip


@router.get("")
async def index(request: Request, desk: Staff, done: Annotated[str, Query(max_length=20)] = "") -> HTMLResponse:
    return await _page(request, desk, done=done)


@router.post("/new")
async def add(request: Request, desk: Staff) -> Response:
    form = await checked_form(request)
    body = {name: text(form, name) for name in ("username", "display_name", "role")}
    body["password"] = str(form.get("password", ""))
    if problem := await sent(desk, "POST", "/staff", body):
        return await _page(request, desk, problem=problem, form="staff", values=typed(form))
    return redirect("/console/staff?done=added")


@router.post("/{staff_id}")
async def change(request: Request, desk: Staff, staff_id: str) -> Response:
    """A new role, or disabled / enabled again (one of them per form)."""
    form = await checked_form(request)
    body: dict[str, Any] = {"role": text(form, "role")} if "role" in form else {}
    if "disabled" in form:
        body["disabled"] = text(form, "disabled") == "true"
    if problem := await sent(desk, "PATCH", f"/staff/{staff_id}", body):
        return await _page(request, desk, problem=problem)
    return redirect("/console/staff?done=changed")


@router.post("/roles/new")
async def add_role(request: Request, desk: Staff) -> Response:
    form = await checked_form(request)
    body = {"name": text(form, "name"), "title": text(form, "title"), "permissions": form.getlist("permissions")}
    if problem := await sent(desk, "POST", "/roles", body):
        values = {**typed(form), "permissions": form.getlist("permissions")}
        return await _page(request, desk, problem=problem, form="role", values=values)
    return redirect("/console/staff?done=role")


@router.post("/purposes/new")
async def add_purpose(request: Request, desk: Staff) -> Response:
    form = await checked_form(request)
    if problem := await sent(desk, "POST", "/purposes", {"key": text(form, "key"), "title": text(form, "title")}):
        return await _page(request, desk, problem=problem, form="purpose", values=typed(form))
    return redirect("/console/staff?done=purpose")
