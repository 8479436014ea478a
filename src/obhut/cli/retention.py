from __future__ import annotations

import typer
from rich.table import Table
from sqlalchemy import func, select

from obhut.cli.context import console, container, progress_bar
from obhut.cli.keys import WORKSPACE
from obhut.customers.models import Customer
from obhut.kit.db import unit_of_work
from obhut.retention import purge as purging

app = typer.Typer(help="Retention: what a purge would do, and the purge itself.", no_args_is_help=True)


@app.command("purge")
def purge(
    workspace: str = WORKSPACE,
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would go, change nothing"),  # noqa: FBT003 - typer default
    batch: int = typer.Option(5000, min=1, max=50_000, help="Customers erased per committed batch"),
) -> None:
    """Erases customers whose data outlived every policy, clears the categories due for others, keeps what
    legal holds name; resumes an interrupted run; logs a deletion proof in the access log."""
    with container() as built:
        ws = workspace or built.settings.default_workspace
        if dry_run:
            with unit_of_work(built.sessions) as session:
                report = purging.dry_run(session, ws)
            table = Table("category:action", "customers", title=f"purge dry run, workspace '{ws}'")
            for key, count in sorted(report.by_category.items()):
                table.add_row(key, str(count))
            console.print(table)
            console.print(
                f"examined {report.examined}: would erase {report.erase}, clear categories of {report.clear}; "
                f"{report.held} under a legal hold"
            )
            return
        with built.sessions() as session:
            total = session.scalar(
                select(func.count()).where(Customer.workspace_id == ws, Customer.erased_at.is_(None))
            )
        with progress_bar() as bar:
            task = bar.add_task("purging", total=total)
            run = None
            for run in built.purge().batches(ws, batch):
                bar.update(task, completed=run.examined)
        assert run is not None
        console.print(
            f"purge {run.run_id}: examined {run.examined}, erased {run.erased}, cleared {run.cleared}, "
            f"held {run.held}; deletion proof sha256:{run.proof}"
        )
