"""Staff accounts from the command line: the first owner of a workspace, before anyone can sign in."""

from __future__ import annotations

import typer
from rich.table import Table

from obhut.access import service
from obhut.audit.rules import action
from obhut.audit.service import Event
from obhut.cli.context import console, container, record
from obhut.kit.db import unit_of_work

app = typer.Typer(help="Staff accounts.", no_args_is_help=True)


@app.command("create")
def create(
    username: str,
    role: str = typer.Option("owner", help="owner, admin, privacy_officer, support_agent, analyst, auditor, ..."),
    workspace: str = typer.Option(None, help="Workspace (default OBHUT_DEFAULT_WORKSPACE)"),
    name: str = typer.Option("", help="Display name"),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="At least 12 characters"
    ),
) -> None:
    """Create a staff account that signs in with a password (and sets up a second factor after)."""
    with container() as built, unit_of_work(built.sessions) as session:
        workspace_id = workspace or built.settings.default_workspace
        roles = built.policies.snapshot(session, workspace_id).roles
        staff = service.create_staff(
            session, workspace_id, username=username, display_name=name, role=role, roles=roles, password=password
        )
        record(session, workspace_id, Event(action("cli", "staff", "create"), target=f"staff:{staff.staff_id}"))
        console.print(f"staff member {staff.staff_id} ({staff.role}) created in '{workspace_id}'")


@app.command("list")
def list_staff(workspace: str = typer.Option(None, help="Workspace (default OBHUT_DEFAULT_WORKSPACE)")) -> None:
    with container() as built, unit_of_work(built.sessions) as session:
        table = Table("id", "username", "role", "TOTP", "SSO", "disabled")
        for staff in service.list_staff(session, workspace or built.settings.default_workspace):
            table.add_row(
                staff.staff_id,
                staff.username,
                staff.role,
                "yes" if staff.totp_confirmed else "no",
                "yes" if staff.sso_subject else "no",
                f"{staff.disabled_at:%Y-%m-%d}" if staff.disabled_at else "",
            )
    console.print(table)
