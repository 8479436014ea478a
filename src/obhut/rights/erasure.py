"""Erasure across every domain (GDPR Art. 17): each handler in the registry erases its part or says what
it keeps and why (retention duties and legal holds win over erasure where the law says so); the customer's
data key is shredded last; the erasure goes into the ledger that outlives backups; and the customer gets a
signed certificate of what was erased, when, and what was kept and why."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from obhut.consent import restrictions
from obhut.consent.rules import Restriction
from obhut.consent.service import compact_jws
from obhut.customers.models import Customer
from obhut.customers.rules import FIELDS
from obhut.kit.clock import now
from obhut.kit.db import beside, unit_of_work
from obhut.kit.errors import ConflictError, NotFoundError
from obhut.retention import service as retention
from obhut.rights.ledger import Erasure, ErasureLedger
from obhut.rights.ports import Batch, Kept, Subject
from obhut.rights.registry import Registry
from obhut.vault.keyring import Keyring
from obhut.vault.service import Vault

CERTIFICATE_KEY = "erasure-certificates"
CERTIFICATE_TYPE = "erasure-certificate+jwt"


@dataclass(frozen=True)
class Certificate:
    token: str  # compact JWS (Ed25519), verifiable with the workspace's certificate key
    claims: dict[str, Any]

    def __repr__(self) -> str:
        return f"Certificate(erased_at={self.claims['erased_at']!r})"


def present_categories(customer: Customer) -> list[str]:
    return sorted({spec.category.value for name, spec in FIELDS.items() if getattr(customer, name) is not None})


def erased_already(session: Session, customer: Customer) -> bool:
    """Shredded, or erased with some categories kept for a legal duty (the `erased` restriction)."""
    if customer.erased_at is not None:
        return True
    return restrictions.restriction_of(session, customer.workspace_id, customer.id) is Restriction.ERASED


def preview(session: Session, customer: Customer) -> list[Kept]:
    """What an erasure of the customer would keep now, and why: to tell them before they ask for it."""
    return list(retention.retained_for(session, customer, present_categories(customer)).categories.values())


def erase(
    session: Session,
    keyring: Keyring,
    registry: Registry,
    ledger: ErasureLedger | None,
    customer_id: str,
    *,
    request_id: str | None = None,
    language: str = "en",
) -> Certificate:
    """Erases the customer everywhere, in the caller's transaction; the ledger entry is on disk before
    that transaction commits."""
    workspace_id = keyring.workspace_id
    customer = session.get(Customer, (workspace_id, customer_id))
    if customer is None:
        raise NotFoundError(f"no customer {customer_id} in workspace '{workspace_id}'")
    if erased_already(session, customer):
        raise ConflictError(f"customer {customer_id} was erased already; their certificate is on the erasure request")
    retained = retention.retained_for(session, customer, present_categories(customer))
    subject = Subject(session, keyring, workspace_id, customer_id, language)
    outcomes = [handler.erase(subject, retained) for handler in registry]
    at = now()
    kept = [asdict(k) | {"until": k.until.isoformat() if k.until else None} for o in outcomes for k in o.kept]
    claims = {
        "type": "erasure certificate (GDPR Art. 17)",
        "iat": int(at.timestamp()),
        "controller": {"workspace": workspace_id},
        "subject": customer_id,
        "request": request_id,
        "erased_at": at.isoformat(),
        "erased": {o.domain: o.erased for o in outcomes if o.erased},
        "kept": kept,
        "data_key": "kept, restricted to the duties above, until they end" if retained else "destroyed",
    }
    certificate = Certificate(compact_jws(keyring, CERTIFICATE_KEY, CERTIFICATE_TYPE, claims), claims)
    if ledger is not None:  # on disk before the transaction commits
        beside(session, partial(ledger.append, [Erasure(workspace_id, customer_id, at)]))
    return certificate


def erase_all(
    session: Session,
    keyring: Keyring,
    registry: Registry,
    ledger: ErasureLedger,
    customer_ids: Sequence[str],
    rows_go: Collection[str] = (),
) -> None:
    """Erases many customers whom nothing keeps (a retention purge: every period ended, no hold), through
    every handler in a few statements each; the ledger gets them in one append. No certificates: the
    purge's deletion proof covers them. `rows_go`: those whose rows the caller deletes next."""
    if not customer_ids:
        return
    batch = Batch(session, keyring, keyring.workspace_id, customer_ids, frozenset(rows_go))
    for handler in registry:
        handler.erase_all(batch)
    at = now()
    erasures = [Erasure(keyring.workspace_id, customer_id, at) for customer_id in customer_ids]
    beside(session, partial(ledger.append, erasures))  # on disk before the transaction commits


def replay(sessions: sessionmaker[Session], vault: Vault, registry: Registry, ledger: ErasureLedger) -> int:
    """Erases again every customer in the ledger whom the database holds unerased (it was restored from a
    backup taken before their erasure); how many. Safe to run any number of times."""
    again = 0
    for erasure in ledger.entries():
        with unit_of_work(sessions) as session:
            customer = session.get(Customer, (erasure.workspace_id, erasure.customer_id))
            if customer is None or erased_already(session, customer):
                continue
            keyring = vault.open(session, erasure.workspace_id)
            erase(session, keyring, registry, None, erasure.customer_id)
            again += 1
    return again
