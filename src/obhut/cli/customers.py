from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from obhut.audit.rules import action
from obhut.audit.service import Event
from obhut.cli.context import console, container, operator, progress_bar, record
from obhut.customers import tasks
from obhut.customers.rules import FIELDS
from obhut.kit.db import unit_of_work
from obhut.rights import erasure

app = typer.Typer(help="Customers: import, export, reindex, shred.", no_args_is_help=True)
WORKSPACE = typer.Option(None, "--workspace", "-w", help="Workspace (default OBHUT_DEFAULT_WORKSPACE)")


@app.command("import")
def import_customers(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV (with a header) or JSON Lines"),
    workspace: str = WORKSPACE,
    batch_size: int = typer.Option(1000, min=1),
) -> None:
    """Import customers; bad rows go to FILE.rejects.csv with line and reason; re-running is safe."""
    with container() as built:
        ws = workspace or built.settings.default_workspace
        with progress_bar() as bar:
            task = bar.add_task(f"importing {file.name}", total=file.stat().st_size)
            report = tasks.import_file(
                built.customers,
                built.vault,
                built.sessions,
                ws,
                file,
                batch_size=batch_size,
                progress=lambda done: bar.update(task, completed=done),
            )
        with unit_of_work(built.sessions) as session:
            record(session, ws, Event(action("cli", "customer", "import"), count=report.imported))
    console.print(f"imported {report.imported}, already present {report.duplicates}, rejected {report.rejected}")
    if report.rejected:
        console.print(f"rejected rows (line, field, reason) are in {report.reject_file}")
        raise typer.Exit(2)


@app.command("export")
def export_customers(
    out: Path = typer.Option(None, "--out", "-o", help="File to write (mode 0600); default standard output"),
    workspace: str = WORKSPACE,
) -> None:
    """Export every customer, decrypted, as JSON Lines. The file holds personal data in the clear."""
    with container() as built:
        ws = workspace or built.settings.default_workspace
        with progress_bar() as bar:
            task = bar.add_task("exporting", total=None)
            if out is None:
                count = tasks.export_jsonl(built.customers, built.sessions, ws, sys.stdout)
            else:
                with unit_of_work(built.sessions) as session:
                    built.vault.open(session, ws)  # refuse before touching the file if the keys are revoked
                fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    count = tasks.export_jsonl(
                        built.customers, built.sessions, ws, handle, progress=lambda n: bar.update(task, completed=n)
                    )
        with unit_of_work(built.sessions) as session:  # the export is many reads; its entry follows the last
            everything = sorted({spec.category.value for spec in FIELDS.values()})
            record(session, ws, Event(action("cli", "customer", "export"), categories=everything, count=count))
    console.print(f"exported {count} customers")


@app.command("reindex")
def reindex(workspace: str = WORKSPACE, batch_size: int = typer.Option(1000, min=1)) -> None:
    """Fill the blind indexes that customers stored before an upgrade lack (search by name needs the family
    name's). Safe to stop and run again; the worker does the same in the background."""
    with container() as built:
        ws = workspace or built.settings.default_workspace
        with progress_bar() as bar:
            task = bar.add_task("indexing", total=None)
            done = tasks.reindex(
                built.vault, built.sessions, ws, batch_size=batch_size,
                progress=lambda n, total: bar.update(task, completed=n, total=total), context=operator(),
            )  # fmt: skip
    console.print(f"indexed {done} customers" if done else "every customer is indexed already")


@app.command("shred")
def shred(customer_id: str, workspace: str = WORKSPACE) -> None:
    """Erase the customer in every domain and destroy their data key: their fields become unrecoverable, also
    in older copies (a restored backup replays the erasure ledger). Prints the signed certificate."""
    with container() as built, unit_of_work(built.sessions) as session:
        ws = workspace or built.settings.default_workspace
        keyring = built.vault.open(session, ws)
        record(session, ws, Event(action("cli", "customer", "shred"), customer_id=customer_id), keyring)
        rights = built.rights
        certificate = erasure.erase(session, keyring, rights.registry, rights.ledger, customer_id)
    for kept in certificate.claims["kept"]:
        console.print(f"kept: {kept['what']} ({kept['why']})")
    console.print(f"customer {customer_id} erased at {certificate.claims['erased_at']}; certificate:")
    print(certificate.token)  # noqa: T201 - stdout, where it can be captured
