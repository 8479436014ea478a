from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from obhut.audit.rules import action
from obhut.audit.service import Event
from obhut.cli.context import console, container, progress_bar, record
from obhut.kit.db import unit_of_work
from obhut.vault import tasks

app = typer.Typer(help="The workspace's keys: status, rotation, revocation.", no_args_is_help=True)
WORKSPACE = typer.Option(None, "--workspace", "-w", help="Workspace (default OBHUT_DEFAULT_WORKSPACE)")


@app.command("status")
def status(workspace: str = WORKSPACE) -> None:
    """Each key version: provider, state, and how many data keys it wraps."""
    with container() as built, unit_of_work(built.sessions) as session:
        ws = workspace or built.settings.default_workspace
        table = Table("version", "key", "provider", "origin", "state", "data keys", "created", "revoked", title=ws)
        for v in built.vault.status(session, ws):
            revoked = f"[red]{v.revoked_at:%Y-%m-%d %H:%M}[/red]" if v.revoked_at else ""
            table.add_row(
                str(v.version),
                v.key_ref,
                v.provider,
                v.origin,
                v.state,
                str(v.data_keys),
                f"{v.created_at:%Y-%m-%d %H:%M}",
                revoked,
            )
    console.print(table)


@app.command("rotate")
def rotate(
    workspace: str = WORKSPACE,
    import_key: Path = typer.Option(None, help="Use your own key material for the new version (BYOK)"),
    batch_size: int = typer.Option(5000, min=1),
) -> None:
    """New key version; every data key is re-wrapped in batches. Interrupted? Run it again to resume."""
    with container() as built:
        ws = workspace or built.settings.default_workspace
        with progress_bar() as bar:
            task = bar.add_task("re-wrapping data keys", total=None)
            report = tasks.rotate(
                built.vault,
                built.sessions,
                ws,
                batch_size=batch_size,
                imported_key=import_key.read_bytes() if import_key else None,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        with unit_of_work(built.sessions) as session:  # rotation commits per batch; its entry follows the last
            record(session, ws, Event(action("cli", "key", "rotate"), target=f"key:v{report.to_version}"))
    verb = "resumed and finished" if report.resumed else "done"
    console.print(
        f"rotation {verb}: v{report.from_versions} -> v{report.to_version}, {report.rewrapped} data keys re-wrapped"
    )


@app.command("revoke")
def revoke(
    workspace: str = WORKSPACE,
    yes: bool = typer.Option(False, "--yes", help="Do not ask"),  # noqa: FBT003 - typer default
) -> None:
    """Disable the workspace's keys: from now on no personal data of it can be read or written."""
    with container() as built:
        ws = workspace or built.settings.default_workspace
        if not yes:
            typer.confirm(f"Revoke every key of workspace '{ws}'? Reads will fail until restored", abort=True)
        with unit_of_work(built.sessions) as session:
            versions = built.vault.revoke(session, ws)
            record(session, ws, Event(action("cli", "key", "revoke"), target=f"key:{versions[-1].key_ref}"))
    console.print(f"revoked {', '.join(v.key_ref for v in versions)}")


@app.command("restore")
def restore(workspace: str = WORKSPACE) -> None:
    """Re-enable revoked keys."""
    with container() as built, unit_of_work(built.sessions) as session:
        ws = workspace or built.settings.default_workspace
        versions = built.vault.restore(session, ws)
        record(session, ws, Event(action("cli", "key", "restore"), target=f"key:{versions[-1].key_ref}"))
    console.print(f"restored {', '.join(v.key_ref for v in versions)}")


@app.command("wrapping-key")
def wrapping_key(provider: str = typer.Option(None, help="Provider (default OBHUT_KEY_PROVIDER)")) -> None:
    """The RSA public key to wrap your own key material for (bring your own key)."""
    with container() as built:
        print(built.vault.provider(provider or built.settings.key_provider).wrapping_public_key_pem())  # noqa: T201
