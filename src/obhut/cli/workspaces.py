from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from obhut.audit.rules import action
from obhut.audit.service import Event
from obhut.cli.context import console, container, record
from obhut.kit.db import unit_of_work
from obhut.workspaces import service

app = typer.Typer(help="Workspaces (tenants).", no_args_is_help=True)


@app.command("create")
def create(
    workspace_id: str,
    name: str = typer.Option(None),
    key_provider: str = typer.Option(None, help="local, pkcs11 or openbao (default OBHUT_KEY_PROVIDER)"),
    region: str = typer.Option("DE", help="Default region for national phone numbers"),
    import_key: Path = typer.Option(None, help="Bring your own key: material wrapped for 'obhut keys wrapping-key'"),
) -> None:
    with container() as built, unit_of_work(built.sessions) as session:
        service.create(
            session,
            built.vault,
            workspace_id,
            name=name,
            key_provider=key_provider or built.settings.key_provider,
            default_region=region,
            imported_key=import_key.read_bytes() if import_key else None,
        )
        record(session, workspace_id, Event(action("cli", "workspace", "create"), target=f"workspace:{workspace_id}"))
    console.print(f"workspace '{workspace_id}' created")


@app.command("list")
def list_workspaces() -> None:
    with container() as built, unit_of_work(built.sessions) as session:
        table = Table("workspace", "name", "region", "created")
        for ws in service.list_all(session):
            table.add_row(ws.workspace_id, ws.name, ws.default_region, f"{ws.created_at:%Y-%m-%d %H:%M}")
    console.print(table)
