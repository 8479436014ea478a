"""The retention purge: finds the customers whose data has outlived its policy (a dry run reports them),
then erases them, or clears the categories that are due, in resumable batches. Legal holds stop it. Every
step is in the access log, and a finished run logs its deletion proof: a SHA-256 chain over each customer
id and what was done, which the run's record keeps."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from obhut.audit import rules as audit_rules
from obhut.audit import service as audit
from obhut.audit.service import Context, Event
from obhut.customers.models import Customer
from obhut.customers.rules import FIELDS
from obhut.customers.service import CustomerService
from obhut.kit import bulk, collector
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.kit.ids import new_id
from obhut.retention import rules, service
from obhut.retention.models import PurgeRun
from obhut.retention.rules import Action, Anchor, Hold, Policy
from obhut.rights import erasure
from obhut.rights.ledger import ErasureLedger
from obhut.rights.registry import Registry
from obhut.vault.service import Vault

SURVEY_WINDOW = 20_000  # customers read per survey query
SYSTEM = Context("system:retention", "system", "local", "obhut-retention", "")
GENESIS = "0" * 64


@dataclass(frozen=True)
class Due:
    """One customer the purge acts on: erased whole, or only `categories` cleared."""

    customer_id: str
    whole: bool
    action: Action
    categories: tuple[str, ...]
    held: tuple[str, ...] = ()

    def summary_keys(self) -> list[str]:
        """`category:action` per category acted on: how reports and runs count them."""
        return [f"{c}:{self.action.value if self.whole else 'clear'}" for c in self.categories]


@dataclass
class Report:
    """A dry run: what a purge would do now, without doing it."""

    examined: int = 0
    erase: int = 0
    clear: int = 0
    held: int = 0
    by_category: Counter[str] = field(default_factory=Counter)
    customers: list[Due] = field(default_factory=list)  # the first ones, by id


@dataclass(frozen=True)
class Window:
    """What one survey found among the next customers by id."""

    found: list[Due]
    last: str  # the last id in the window: where the next one starts
    examined: int  # the customers in it who are not erased
    final: bool  # no customer comes after it


def survey(
    session: Session, workspace_id: str, policies: list[Policy], holds: list[Hold], after: str, limit: int
) -> Window:
    """The due customers among the next `limit` rows after `after` (by id). The database says which of them
    may be due (a period of theirs has ended): only those rows are read."""
    at = now()
    ahead = (Customer.workspace_id == workspace_id, Customer.id > after)
    # the window's bounds from the primary key's index alone, erased rows included: no row of it is fetched here
    edge = list(session.scalars(select(Customer.id).where(*ahead).order_by(Customer.id).offset(limit - 1).limit(2)))
    if edge:  # a full window; a second id past its edge: somebody comes after it
        last, size, final = edge[0], limit, len(edge) == 1
    else:  # fewer than `limit` remain: the last window
        last, size = session.execute(select(func.max(Customer.id), func.count()).where(*ahead)).one()
        final = True
        if last is None:
            return Window([], after, 0, final=True)
    window = (*ahead, Customer.id <= last)
    erased = session.scalar(select(func.count()).where(*window, Customer.erased_at.is_not(None)))  # their index
    starts = rules.latest_starts(policies, at)
    rows = session.execute(
        select(*_SURVEYED).where(*window, Customer.erased_at.is_(None), _may_be_due(starts)).order_by(Customer.id)
    )
    latest = [(p.category, _POSITION[p.anchor], start, p.action) for p, start in starts]
    found = [due for row in rows if (due := _due(row, latest, holds)) is not None]
    return Window(found, str(last), int(size) - int(erased or 0), final=final)


def _due(row: Sequence[Any], latest: list[tuple[str, int, datetime, Action]], holds: list[Hold]) -> Due | None:
    """`row`: as `_SURVEYED` reads it; `latest`: (category, position `i` of its anchor in the row, latest
    start of an ended period, action) per policy."""
    customer_id, filled = row[0], row[_FILLED:]
    present = {category for category, has in zip(_CATEGORY_OF, filled, strict=True) if has}
    due = {c: a for c, i, start, a in latest if c in present and row[i] is not None and row[i] <= start}
    held = rules.held(holds, customer_id, due)
    acting = {c: a for c, a in due.items() if c not in held}
    if acting:
        whole = present <= set(acting)
        action = Action.DELETE if all(a is Action.DELETE for a in acting.values()) else Action.ANONYMISE
        return Due(customer_id, whole, action, tuple(sorted(acting)), tuple(sorted(held)))
    if held:
        return Due(customer_id, whole=False, action=Action.ANONYMISE, categories=(), held=tuple(sorted(held)))
    return None


def _may_be_due(starts: list[tuple[Policy, datetime]]) -> ColumnElement[bool]:
    """Whether any policy's period has ended for the customer, by their dates alone (which fields hold data
    is looked at after). `starts`: as `rules.latest_starts` gives them; per anchor the latest one counts."""
    latest: dict[Anchor, datetime] = {}
    for policy, start in starts:
        latest[policy.anchor] = max(start, latest.get(policy.anchor, start))
    return or_(false(), *(_ANCHORED[anchor] <= start for anchor, start in latest.items()))


_ANCHORED = {
    Anchor.COLLECTION: Customer.created_at,
    Anchor.LAST_ACTIVITY: Customer.updated_at,
    Anchor.CONTRACT_END: Customer.contract_ended_at,
}
# What a survey reads of a customer who may be due: dates, and which fields hold data (never the ciphertext).
_CATEGORY_OF = [spec.category.value for spec in FIELDS.values()]
_SURVEYED = (
    Customer.id, Customer.created_at, Customer.updated_at, Customer.contract_ended_at,
    *(getattr(Customer, name).is_not(None) for name in FIELDS),
)  # fmt: skip
_POSITION = {Anchor.COLLECTION: 1, Anchor.LAST_ACTIVITY: 2, Anchor.CONTRACT_END: 3}  # the anchor's date in a row
_FILLED = 4  # where the fields' "holds data" flags start


def dry_run(session: Session, workspace_id: str, batch: int = 1000, keep: int = 100) -> Report:
    report = Report()
    policies, holds = service.policies(session, workspace_id), service.holds(session, workspace_id)
    after = ""
    while True:
        window = survey(session, workspace_id, policies, holds, after, batch)
        report.examined += window.examined
        after = window.last
        for due in window.found:
            report.held += bool(due.held)
            if due.categories:
                report.erase += due.whole
                report.clear += not due.whole
                report.by_category.update(due.summary_keys())
                if len(report.customers) < keep:
                    report.customers.append(due)
        if window.final:
            return report


def _proof(previous: str, due: Due) -> str:
    line = f"{due.customer_id} {'erase' if due.whole else 'clear'} {due.action.value} {' '.join(due.categories)}"
    return hashlib.sha256(f"{previous}\n{line}".encode()).hexdigest()


class Purge:
    def __init__(
        self, sessions: sessionmaker[Session], vault: Vault, customers: CustomerService, registry: Registry,
        ledger: ErasureLedger, window: int = SURVEY_WINDOW,
    ) -> None:  # fmt: skip
        self._sessions, self._vault, self._customers = sessions, vault, customers
        self._registry, self._ledger, self._window = registry, ledger, window

    def run(self, workspace_id: str, batch: int = 5000) -> PurgeRun:
        """Purges the workspace, resuming the run a crash or a stop left unfinished; the finished run."""
        last = None
        for last in self.batches(workspace_id, batch):  # noqa: B007 - the last one is the answer
            pass
        assert last is not None
        return last

    def batches(self, workspace_id: str, batch: int) -> Iterator[PurgeRun]:
        """One committed batch at a time; each yields the run as it stands."""
        while True:
            with collector.paused(), unit_of_work(self._sessions) as session:
                run = self._current(session, workspace_id)
                done = self._batch(session, run, batch)
                session.expunge(run)
            yield run
            if done:
                return

    def _current(self, session: Session, workspace_id: str) -> PurgeRun:
        unfinished = session.scalars(
            select(PurgeRun).where(PurgeRun.workspace_id == workspace_id, PurgeRun.finished_at.is_(None))
        ).first()
        if unfinished is not None:
            return unfinished
        run = PurgeRun(workspace_id=workspace_id, run_id=new_id(), started_at=now(), cursor="", examined=0, erased=0,
                       cleared=0, held=0, proof=GENESIS, summary="{}")  # fmt: skip
        session.add(run)
        return run

    def _batch(self, session: Session, run: PurgeRun, batch: int) -> bool:
        """About `batch` customers acted on (at most a survey window more), however many it examines to find
        them: an erasure moves every shard key its customers sit in, so fewer, larger batches cost less each."""
        workspace_id = run.workspace_id
        policies, holds = service.policies(session, workspace_id), service.holds(session, workspace_id)
        found, examined, limit = list[Due](), 0, max(batch, self._window)
        while True:
            window = survey(session, workspace_id, policies, holds, run.cursor, limit)
            found += window.found
            examined += window.examined
            run.cursor, exhausted = window.last, window.final
            if exhausted or sum(bool(d.categories) for d in found) >= batch:
                break
        keyring, events = self._vault.open(session, workspace_id), list[Event]()
        summary, whole = Counter(json.loads(run.summary)), []
        proof, held = run.proof, 0  # the run's columns are set once below: each set of one costs a few µs
        for due in found:
            held += bool(due.held)
            if not due.categories:
                continue
            verb = "purge" if due.whole else "purge-fields"
            event = Event(audit_rules.action("worker", "customer", verb), customer_id=due.customer_id,
                          categories=due.categories)  # fmt: skip
            events.append(event)
            if due.whole:
                whole.append(due)
            else:
                fields = [n for n, spec in FIELDS.items() if spec.category.value in due.categories]
                self._customers.clear(session, workspace_id, due.customer_id, fields)
                run.cleared += 1
            summary.update(due.summary_keys())
            proof = _proof(proof, due)
        run.proof, run.held = proof, run.held + held
        erasing = {d.customer_id for d in whole}
        kept = [e.customer_id for e in events if e.customer_id is not None and e.customer_id not in erasing]
        for chunk in bulk.chunks(kept):  # their keys in a few queries, not one per log entry
            keyring.subjects(chunk)
        audit.record_many(session, keyring, workspace_id, SYSTEM, events, erasing=erasing)  # their keys go next
        deleted = [d.customer_id for d in whole if d.action is Action.DELETE]
        erasure.erase_all(session, keyring, self._registry, self._ledger, [d.customer_id for d in whole], deleted)
        self._customers.remove_rows(session, workspace_id, deleted)  # their consent states went with the erasure
        run.erased += len(whole)
        run.examined += examined
        run.summary = json.dumps(dict(summary), sort_keys=True)
        finished = exhausted
        if finished:
            run.finished_at = now()
            event = Event(audit_rules.action("worker", "retention", "purge"), target=f"purge:{run.run_id}",
                          ticket=f"sha256:{run.proof}", count=run.erased + run.cleared)  # fmt: skip
            audit.record(session, None, workspace_id, SYSTEM, event)
        session.flush()
        return finished
