"""The retention purge on SQLite and PostgreSQL: a dry run reports without changing anything; the purge
erases customers whose every category is due, clears the categories due for others, leaves customers under
a legal hold, resumes after a stop, and logs its deletion proof in the access log."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import select, update

from obhut.audit.models import AuditEntry
from obhut.container import Container
from obhut.customers.models import Customer
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.retention import purge, service
from obhut.retention.models import PurgeRun
from obhut.retention.purge import Purge
from obhut.retention.rules import Action, Anchor, Policy
from tests.conftest import WORKSPACE, jane

IDLE = Policy("contact", 30, Anchor.LAST_ACTIVITY, Action.DELETE)


def _customers(container: Container) -> dict[str, str]:
    """Old (idle for a year), held (idle, under a hold), notes (created long ago, active), fresh."""
    ids = {}
    with unit_of_work(container.sessions) as session:
        for n, name in enumerate(("old", "older", "held", "notes", "fresh")):
            ids[name] = container.customers.create(session, WORKSPACE, jane(external_ref=f"K-{n}")).id
        long_ago = now() - timedelta(days=400)
        for name in ("old", "older", "held", "notes"):
            moved = {"created_at": long_ago} | ({} if name == "notes" else {"updated_at": long_ago})
            session.execute(update(Customer).where(Customer.id == ids[name]).values(**moved))
        for category in ("identity", "contact", "financial"):
            service.set_policy(session, WORKSPACE, Policy(category, 30, Anchor.LAST_ACTIVITY, Action.DELETE), "tests")
        service.set_policy(session, WORKSPACE, Policy("notes", 90, Anchor.COLLECTION, Action.ANONYMISE), "tests")
        service.add_hold(session, WORKSPACE, ids["held"], None, "case 2027-17", "tests")
    return ids


def _purge(container: Container) -> Purge:
    rights = container.rights
    return Purge(container.sessions, container.vault, container.customers, rights.registry, rights.ledger, window=2)


def test_a_dry_run_reports_and_changes_nothing(container: Container) -> None:
    ids = _customers(container)
    with unit_of_work(container.sessions) as session:
        report = purge.dry_run(session, WORKSPACE)
        assert (report.examined, report.erase, report.clear, report.held) == (5, 2, 1, 1)
        assert report.by_category["notes:clear"] == 1
        assert report.by_category["identity:anonymise"] == 2
        assert {d.customer_id for d in report.customers} == {ids["old"], ids["older"], ids["notes"]}
        assert session.scalar(select(Customer.erased_at).where(Customer.id == ids["old"])) is None


def test_the_purge_resumes_and_logs_its_proof(container: Container) -> None:
    ids = _customers(container)
    runner = _purge(container)
    first = next(runner.batches(WORKSPACE, batch=1))  # then the process "stops"
    assert first.finished_at is None
    assert 1 <= first.erased + first.cleared <= 2  # a survey window (2) may hold more than the batch asks
    assert first.examined < 5
    run = runner.run(WORKSPACE, batch=1)
    assert run.run_id == first.run_id
    assert (run.examined, run.erased, run.cleared, run.held) == (5, 2, 1, 1)
    with unit_of_work(container.sessions) as session:
        rows = {c.id: c for c in session.scalars(select(Customer).where(Customer.workspace_id == WORKSPACE))}
        assert rows[ids["old"]].erased_at is not None
        assert rows[ids["older"]].erased_at is not None
        assert rows[ids["notes"]].notes is None
        assert rows[ids["notes"]].email is not None
        assert rows[ids["held"]].erased_at is None
        assert rows[ids["held"]].notes is not None
        assert rows[ids["fresh"]].notes is not None
        logged = session.scalars(select(AuditEntry).where(AuditEntry.action == "worker:retention:purge")).one()
        assert logged.ticket == f"sha256:{run.proof}"
        assert logged.count == 3
        assert session.scalars(select(PurgeRun)).one().finished_at is not None
    proof = "0" * 64
    for customer in sorted(ids[n] for n in ("old", "older", "notes")):
        line = (
            f"{customer} clear anonymise notes"
            if customer == ids["notes"]
            else f"{customer} erase anonymise contact financial identity notes"
        )
        proof = hashlib.sha256(f"{proof}\n{line}".encode()).hexdigest()
    assert run.proof == proof
    assert {e.customer_id for e in container.rights.ledger.entries()} == {ids["old"], ids["older"]}


def test_rows_kept_erased_are_counted_out_of_every_later_survey(container: Container) -> None:
    """Windows are taken by id over every row: one that holds only erased rows (kept for the anonymised
    notes) examines nobody, and the survey goes on past it."""
    ids = _customers(container)
    _purge(container).run(WORKSPACE, batch=5)
    with unit_of_work(container.sessions) as session:
        report = purge.dry_run(session, WORKSPACE, batch=2)  # the first window: "old" and "older", both erased
    assert (report.examined, report.erase, report.clear, report.held) == (3, 0, 0, 1)
    assert [d.customer_id for d in report.customers] == []
    assert ids["old"] < ids["older"] < ids["held"]


def test_the_survey_finds_exactly_whom_a_period_has_ended_for(container: Container) -> None:
    """The database picks who may be due by their dates; the rules decide: both must agree at the edges."""
    moment = now()
    dates = {
        "contract ended": {"contract_ended_at": moment - timedelta(days=400)},
        "idle, contract running": {"updated_at": moment - timedelta(days=400)},  # contract_ended_at stays NULL
        "idle a minute short": {"updated_at": moment - timedelta(days=30) + timedelta(minutes=1)},
        "idle a second over": {"updated_at": moment - timedelta(days=30, seconds=1)},
    }
    ids = {}
    with unit_of_work(container.sessions) as session:
        for n, (name, values) in enumerate(dates.items()):
            ids[name] = container.customers.create(session, WORKSPACE, jane(external_ref=f"S-{n}")).id
            session.execute(update(Customer).where(Customer.id == ids[name]).values(**values))
        service.set_policy(session, WORKSPACE, Policy("financial", 365, Anchor.CONTRACT_END, Action.DELETE), "tests")
        service.set_policy(session, WORKSPACE, IDLE, "tests")
    with unit_of_work(container.sessions) as session:
        report = purge.dry_run(session, WORKSPACE, batch=2)
    assert report.examined == len(dates)
    found = {d.customer_id: d.categories for d in report.customers}
    assert found == {
        ids["contract ended"]: ("financial",),
        ids["idle, contract running"]: ("contact",),
        ids["idle a second over"]: ("contact",),
    }
