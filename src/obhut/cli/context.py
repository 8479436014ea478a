from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TimeRemainingColumn
from sqlalchemy.orm import Session

from obhut import __version__, migrations
from obhut.audit import service as audit
from obhut.audit.service import Context, Event
from obhut.container import Container, build
from obhut.kit.db import unit_of_work
from obhut.kit.errors import ObhutError
from obhut.kit.ids import new_id
from obhut.kit.settings import Settings
from obhut.vault.keyring import Keyring
from obhut.workspaces import service as workspaces
from obhut.workspaces.models import Workspace

console = Console(stderr=True)


@contextmanager
def container() -> Iterator[Container]:
    """Settings -> migrated databases -> services; domain errors become a clear message and exit 1."""
    settings = Settings()
    try:
        migrations.upgrade(settings)
        built = build(settings)
        try:
            ensure_default_workspace(built)
            yield built
        finally:
            built.close()
    except ObhutError as error:
        console.print(f"[red]error:[/red] {error.detail}")
        for problem in getattr(error, "errors", []):
            console.print(f"  {problem.field}: {problem.message}")
        raise typer.Exit(1) from None


def ensure_default_workspace(built: Container) -> None:
    with unit_of_work(built.sessions) as session:
        name = built.settings.default_workspace
        if session.get(Workspace, name) is None:
            workspaces.create(session, built.vault, name, key_provider=built.settings.key_provider)


def progress_bar(*, auto_refresh: bool = True) -> Progress:
    """A bar on the terminal. `auto_refresh=False`: drawn only when the caller refreshes it, with no thread of
    its own (work that forks worker processes keeps this process single-threaded)."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        auto_refresh=auto_refresh,
    )


def operator() -> Context:
    """The CLI's caller as the access log names them: the operating-system account on this machine."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return Context(f"cli:{user}"[:80], "operator", "local", f"obhut-cli/{__version__}", new_id())


def record(session: Session, workspace_id: str, event: Event, keyring: Keyring | None = None) -> None:
    """A CLI action in the access log, in the caller's transaction."""
    audit.record(session, keyring, workspace_id, operator(), event)


def record_for(session: Session, workspace_id: str, event: Event) -> None:
    """A CLI action that concerns one workspace, or ("*") every one: each one's access log records it."""
    for workspace in workspaces.list_all(session):
        if workspace_id in ("*", workspace.workspace_id):
            record(session, workspace.workspace_id, event)
