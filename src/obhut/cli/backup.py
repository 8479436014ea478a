from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.progress import TaskID
from rich.table import Table

from obhut import migrations
from obhut.audit.rules import action
from obhut.audit.service import Event
from obhut.cli.context import console, container, progress_bar, record_for
from obhut.container import Container, build
from obhut.kit.db import unit_of_work
from obhut.kit.errors import ObhutError
from obhut.kit.settings import Settings
from obhut.retention import backups
from obhut.rights import erasure
from obhut.workspaces import service as workspaces

app = typer.Typer(
    help="Encrypted backups of the main database and the key store. Keep the key file (or use an HSM or "
    "OpenBao) apart from the backups: restoring needs the key provider.",
    no_args_is_help=True,
)
BACKUP = typer.Argument(..., help="A backup folder (obhut-backup-<time>-<id>)", exists=True, file_okay=False)


@contextmanager
def _reported() -> Iterator[None]:
    try:
        yield
    except ObhutError as error:
        console.print(f"[red]error:[/red] {error.detail}")
        raise typer.Exit(1) from None


@contextmanager
def _progress() -> Iterator[backups.Progress]:
    with progress_bar() as bar:
        tasks: dict[str, TaskID] = {}

        def advance(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        yield advance


def _erasure_replay(backup_id: str) -> backups.AfterRestore:
    """The hook `restore` calls once both databases are back: erasures made after the backup was taken
    are made again (the erasure ledger lives outside the backups), and shard keys that a replayed shred
    left behind are destroyed. Nothing erased comes back. The restore goes into every workspace's log."""

    def replay_and_log(settings: Settings) -> int:
        return replay_erasures(settings, backup_id)

    return replay_and_log


def replay_erasures(settings: Settings, backup_id: str = "") -> int:
    migrations.upgrade(settings)  # a backup can be older than the code
    built = build(settings)
    try:
        again = erasure.replay(built.sessions, built.vault, built.rights.registry, built.rights.ledger)
        with unit_of_work(built.sessions) as session:
            for workspace in workspaces.list_all(session):
                built.vault.sweep(session, workspace.workspace_id)
        _log(built, "restore", backup_id, again)
        return again
    finally:
        built.close()


def _log(built: Container, verb: str, backup_id: str, count: int = 0) -> None:
    """A backup concerns every workspace: each one's access log records it (`cli:backup:<verb>`)."""
    with unit_of_work(built.sessions) as session:
        record_for(session, "*", Event(action("cli", "backup", verb), target=f"backup:{backup_id}"[:80], count=count))


@app.command("create")
def create(
    dest: Path = typer.Option(None, "--dest", help="Parent folder (default OBHUT_BACKUP_DIR, data_dir/backups)"),
) -> None:
    """Back up both databases, consistently, while the service runs; prints the new backup's folder."""
    with _reported():
        settings = Settings()
        with _progress() as progress:
            created = backups.create(settings, dest, progress=progress)
        with container() as built:
            _log(built, "create", created.manifest.backup_id)
    console.print(f"backup {created.manifest.backup_id} written")
    print(created.path)  # noqa: T201 - stdout, for scripts


def _print(report: backups.VerifyReport) -> None:
    for check in report.databases:
        table = Table("table", "rows", title=f"{check.database} ({check.kind}, revision {check.revision})")
        for name, count in sorted(check.row_counts.items()):
            table.add_row(name, str(count))
        console.print(table)


@app.command("verify")
def verify(path: Path = BACKUP) -> None:
    """Check checksums and the manifest's MAC, decrypt, and prove each database restores."""
    with _reported():
        with _progress() as progress:
            report = backups.verify(Settings(), path, progress=progress)
        _print(report)
    console.print(f"backup {report.manifest.backup_id} of {report.manifest.created_at} is intact and restores")


@app.command("restore")
def restore(
    path: Path = BACKUP,
    yes: bool = typer.Option(False, "--yes", help="Really replace the configured databases"),  # noqa: FBT003 - typer default
) -> None:
    """Verify the backup, then replace the main database and the key store with it. Stop the service and
    workers first."""
    if not yes:
        console.print(
            "[red]refused:[/red] restore replaces the main database and the key store with the backup's "
            "content; everything written since the backup is lost. Stop the service and workers, then run "
            "again with --yes"
        )
        raise typer.Exit(2)
    with _reported():
        with _progress() as progress:
            backup_id = backups.read_manifest(path)[0].backup_id
            report = backups.restore(Settings(), path, after_restore=_erasure_replay(backup_id), progress=progress)
        _print(report.verified)
    manifest = report.verified.manifest
    console.print(f"restored backup {manifest.backup_id} of {manifest.created_at}")
    if report.erasures_replayed is not None:
        console.print(f"{report.erasures_replayed} erasures made since the backup were redone")
