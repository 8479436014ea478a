from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from functools import partial

import typer
import uvicorn

from obhut import migrations
from obhut.access import service as access
from obhut.audit.rules import action
from obhut.audit.service import Event
from obhut.audit.tasks import Background
from obhut.cli import audit, backup, customers, demo, keys, retention, staff, workspaces
from obhut.cli.context import console, container, record_for
from obhut.consent import tasks as consent_tasks
from obhut.container import Container
from obhut.customers import tasks as customer_tasks
from obhut.kit.db import unit_of_work
from obhut.kit.settings import Settings
from obhut.outbox import tasks as relay_tasks
from obhut.outbox.tasks import RelayThread
from obhut.retention import tasks as retention_tasks
from obhut.rights import tasks as rights_tasks
from obhut.vault import tasks as vault_tasks
from obhut.workspaces import service as workspaces_service
from obhut.workspaces.models import Workspace

app = typer.Typer(help="Obhut: privacy-first customer identity and data platform.", no_args_is_help=True)
db = typer.Typer(help="Database schema.", no_args_is_help=True)
admin = typer.Typer(help="Bootstrap administration.", no_args_is_help=True)
token = typer.Typer(help="Bootstrap admin tokens: platform operators, and the first set-up.", no_args_is_help=True)
app.add_typer(db, name="db")
app.add_typer(admin, name="admin")
admin.add_typer(token, name="token")
app.add_typer(keys.app, name="keys")
app.add_typer(customers.app, name="customers")
app.add_typer(workspaces.app, name="workspaces")
app.add_typer(staff.app, name="staff")
app.add_typer(audit.app, name="audit")
app.add_typer(retention.app, name="retention")
app.add_typer(backup.app, name="backup")


@app.command()
def serve(
    host: str = typer.Option(None, help="Address to listen on (default OBHUT_HOST, 127.0.0.1)"),
    port: int = typer.Option(None, help="Port (default OBHUT_PORT, 8000)"),
) -> None:
    """Run the API service; creates the databases, keys and default workspace on first run."""
    from obhut.api.app import create_app  # noqa: PLC0415 - the web stack loads only for serve

    with container() as built:
        with unit_of_work(built.sessions) as session:
            for workspace in workspaces_service.list_all(session):  # finish shreds a crash interrupted
                built.vault.sweep(session, workspace.workspace_id)
            first_run = not access.has_admin_tokens(session)
            if first_run:
                issued = access.create_admin_token(session, "first run")
                event = Event(action("cli", "admin_token", "create"), target=f"token:{issued.token_id}")
                record_for(session, "*", event)
                console.print("[bold]First run:[/bold] an admin token for the API (shown once, store it now):")
                print(issued.token, flush=True)  # noqa: T201 - stdout, where it can be captured
        settings = built.settings
        # Where staff open it: the public URL (passkeys and SSO are bound to it), unless told to listen elsewhere.
        url = f"http://{host}:{port or settings.port}" if host or port else settings.public_url.rstrip("/")
        if first_run and settings.demo and not settings.is_production:
            for line in demo.show(demo.seed(built), url):
                console.print(line, highlight=False, soft_wrap=True)
        console.print(f"Obhut on {url}: the console at {url}/console, the API at {url}/api/v1/docs")
        background = _background(built)
        try:
            served = create_app(container=built)
            served.state.console_workspace = settings.console_workspace or _suggested(built)
            uvicorn.run(served, host=host or settings.host, port=port or settings.port)
        finally:
            for thread in background:
                thread.stop()


def _suggested(built: Container) -> str:
    """The workspace the console's sign-in form offers: the demo one where it exists, else the default."""
    with built.sessions() as session:
        found = session.get(Workspace, demo.WORKSPACE) is not None
    return demo.WORKSPACE if found else built.settings.default_workspace


def _background(built: Container, *, relay: bool = True) -> list[Background | RelayThread]:
    """The periodic work beside the API: checkpoints and scans; consent expiry, outbox pruning, request
    reminders, interrupted key rotations, blind indexes an upgrade added, the sensitive store's sweep and the
    retention purge; and the outbox relay."""
    settings, threads = built.settings, list[Background | RelayThread]()
    if settings.audit_sequence_seconds > 0:
        jobs: list[Callable[[], object]] = [
            partial(consent_tasks.expire_all, built.sessions, built.vault),
            partial(relay_tasks.prune_all, built.sessions, settings.outbox_keep_days),
            partial(rights_tasks.remind_all, built.sessions, built.rights),
            partial(vault_tasks.resume_rotations, built.vault, built.sessions),
            customer_tasks.Reindexer(built.vault, built.sessions),
            partial(customer_tasks.sweep_sensitive, built.vault, built.sessions),
        ]
        if settings.retention_purge_hours > 0:
            jobs.append(
                partial(retention_tasks.purge_due, built.sessions, built.purge(), settings.retention_purge_hours)
            )
        threads.append(
            Background(
                built.sessions,
                built.vault,
                built.checkpoint_sinks,
                built.alert_webhook,
                settings.audit_sequence_seconds,
                settings.audit_scan_seconds,
                jobs=jobs,
            )
        )
    if relay and settings.outbox_relay_seconds > 0:
        threads.append(RelayThread(built.relay(), settings.outbox_relay_seconds))
    for thread in threads:
        thread.start()
    return threads


@app.command()
def worker(
    idle: float = typer.Option(0.2, help="Seconds the relay rests when nothing is waiting"),
) -> None:
    """Run the scheduled work without the API: the outbox relay (NATS, webhooks, retries) in the foreground;
    beside it checkpoints, scans, consent expiry, request reminders, interrupted key rotations, blind indexes
    an upgrade added, the sensitive store's sweep and the retention purge. Stops on Ctrl-C or SIGTERM; safe to
    kill at any time."""
    with container() as built:
        background = _background(built, relay=False)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        console.print(
            "Obhut worker: relaying the outbox"
            + (" to NATS and webhooks" if built.settings.nats_url else " to webhooks")
        )
        try:
            asyncio.run(relay_tasks.run(built.relay(), stop, idle))
        except KeyboardInterrupt:
            pass
        finally:
            for thread in background:
                thread.stop()


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations to the main database, the key store and, where one is configured, the sensitive store."""
    migrations.upgrade(Settings())
    console.print("databases are up to date")


@token.command("create")
def token_create(
    label: str = typer.Option("admin", help="What the token is for"),
    workspace: str = typer.Option("*", help="Limit it to one workspace"),
) -> None:
    """Print a new admin token once; only its hash is kept."""
    with container() as built, unit_of_work(built.sessions) as session:
        issued = access.create_admin_token(session, label, workspace)
        record_for(session, workspace, Event(action("cli", "admin_token", "create"), target=f"token:{issued.token_id}"))
    console.print(f"admin token {issued.token_id} created; it is shown only now:")
    print(issued.token)  # noqa: T201


@token.command("revoke")
def token_revoke(token_id: str) -> None:
    with container() as built, unit_of_work(built.sessions) as session:
        workspace = access.revoke_admin_token(session, token_id)
        record_for(session, workspace, Event(action("cli", "admin_token", "revoke"), target=f"token:{token_id}"))
    console.print(f"admin token {token_id} revoked")


def main() -> None:
    app()
