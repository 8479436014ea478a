"""`obhut retention purge`: the dry run reports and changes nothing; the purge does it and prints its proof."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from obhut.container import build
from obhut.customers.models import Customer
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.kit.settings import Settings
from obhut.retention import service
from obhut.retention.rules import Action, Anchor, Policy
from tests.cli.conftest import DEFAULT, Obhut
from tests.conftest import jane


def test_dry_run_then_purge(obhut: Obhut, settings: Settings) -> None:
    assert obhut("workspaces", "list").exit_code == 0  # creates the default workspace
    built = build(settings)
    try:
        with unit_of_work(built.sessions) as session:
            idle = built.customers.create(session, DEFAULT, jane()).id
            built.customers.create(session, DEFAULT, jane(external_ref="K-2"))
            session.execute(update(Customer).where(Customer.id == idle).values(updated_at=now() - timedelta(days=99)))
            for category in ("identity", "contact", "financial", "notes"):
                policy = Policy(category, 30, Anchor.LAST_ACTIVITY, Action.DELETE)
                service.set_policy(session, DEFAULT, policy, "tests")
    finally:
        built.close()
    dry = obhut("retention", "purge", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "examined 2: would erase 1, clear categories of 0; 0 under a legal hold" in dry.output
    done = obhut("retention", "purge", "--batch", "1")
    assert done.exit_code == 0, done.output
    assert "examined 2, erased 1, cleared 0, held 0; deletion proof sha256:" in done.output
    again = obhut("retention", "purge", "--dry-run")
    assert "examined 1: would erase 0" in again.output
