"""The access log from the command line: sequence waiting entries, print the signed checkpoint, and verify
the whole tree against every signed checkpoint (and any exported ones)."""

from __future__ import annotations

import base64
from pathlib import Path

import typer
from sqlalchemy import func, select

from obhut.audit import merkle, service, tasks
from obhut.audit.models import AuditEntry
from obhut.cli.context import console, container, progress_bar

app = typer.Typer(help="The tamper-evident access log.", no_args_is_help=True)
WORKSPACE = typer.Option(None, help="Workspace (default OBHUT_DEFAULT_WORKSPACE)")


@app.command("sequence")
def sequence(workspace: str = WORKSPACE) -> None:
    """Place waiting entries in the tree and sign a checkpoint over them."""
    with container() as built:
        workspace_id = workspace or built.settings.default_workspace
        done = service.sequence_all(built.sessions, built.vault, workspace_id, built.checkpoint_sinks)
    console.print(f"{done} entries sequenced in '{workspace_id}'")


@app.command("checkpoint")
def checkpoint(workspace: str = WORKSPACE) -> None:
    """Print the newest signed checkpoint (keep a copy outside the database: `verify --checkpoints`)."""
    with container() as built:
        workspace_id = workspace or built.settings.default_workspace
        service.sequence_all(built.sessions, built.vault, workspace_id, built.checkpoint_sinks)
        with built.sessions() as session:
            typer.echo(service.checkpoint_at(session, workspace_id, None).note, nl=False)


@app.command("verify")
def verify(
    workspace: str = WORKSPACE,
    checkpoints: Path = typer.Option(None, help="A file of exported checkpoints (signed notes, one after another)"),
) -> None:
    """Recompute the tree from the stored entries and check it against every signed checkpoint."""
    exported = _notes(checkpoints.read_text(encoding="utf-8")) if checkpoints else []
    with container() as built:
        workspace_id = workspace or built.settings.default_workspace
        service.sequence_all(built.sessions, built.vault, workspace_id, built.checkpoint_sinks)
        with built.sessions() as session:
            total = session.scalar(select(func.count()).where(AuditEntry.workspace_id == workspace_id)) or 0
            keyring = built.vault.open(session, workspace_id)
            with progress_bar(auto_refresh=False) as bar:  # no thread: verify may fork workers
                task = bar.add_task("verifying", total=total)

                def advance(entries: int) -> None:
                    bar.advance(task, entries)
                    bar.refresh()

                report = tasks.verify(session, keyring, workspace_id, exported, advance)
                bar.update(task, completed=total, refresh=True)
    if report.ok:
        console.print(f"ok: {report.entries} entries, {report.checkpoints} checkpoints, every one as signed")
        return
    console.print(f"[red]TAMPERED[/red]: first bad position {report.first_bad}")
    for problem in report.problems:
        console.print(f"  {problem}")
    raise typer.Exit(1)


def _notes(text: str) -> list[str]:
    """Signed notes one after another (as `obhut audit checkpoint >> file` writes them)."""
    notes: list[str] = []
    current: list[str] = []
    signed = False
    for line in text.splitlines(keepends=True):
        if signed and not line.startswith("\u2014 "):
            notes.append("".join(current))
            current, signed = [], False
        if current or line.strip():
            current.append(line)
            signed = signed or line.startswith("\u2014 ")
    if current:
        notes.append("".join(current))
    return notes


@app.command("prove")
def prove(
    index: int = typer.Option(None, min=0, help="An entry's position: prove it is in the tree"),
    first: int = typer.Option(None, min=1, help="An older checkpoint's size: prove the tree only grew since"),
    size: int = typer.Option(None, min=1, help="The checkpoint to prove against (default the newest)"),
    workspace: str = WORKSPACE,
) -> None:
    """Print an RFC 9162 inclusion or consistency proof (base64 hashes) and the checkpoint it leads to,
    checked here before it is printed."""
    if (index is None) == (first is None):
        console.print("[red]error:[/red] give either --index (inclusion) or --first (consistency)")
        raise typer.Exit(2)
    with container() as built:
        workspace_id = workspace or built.settings.default_workspace
        service.sequence_all(built.sessions, built.vault, workspace_id, built.checkpoint_sinks)
        with built.sessions() as session:
            if index is not None:
                head, proof = service.inclusion(session, workspace_id, index, size)
                leaf = service.node_getter(session, workspace_id)(0, index)
                valid = merkle.verify_inclusion(index, head.size, leaf, proof, bytes(head.root))
            else:
                older, head, proof = service.consistency(session, workspace_id, first, size)
                valid = merkle.verify_consistency(older.size, head.size, bytes(older.root), bytes(head.root), proof)
    for digest in proof:
        typer.echo(base64.b64encode(digest).decode())
    typer.echo("")
    typer.echo(head.note, nl=False)
    if not valid:
        console.print("[red]the proof does not verify: run 'obhut audit verify'[/red]")
        raise typer.Exit(1)
