"""Consent's answer to data-subject requests: the ledger with its proof (chain check and a signed receipt
per purpose) for an export; on erasure the derived state goes and a standing "erased" restriction refuses
every use but legal obligations, while the ledger stays as the proof of what was agreed."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Table, delete

from obhut.consent import cache, restrictions, service
from obhut.consent.models import ConsentChain, ConsentEvent, ConsentState
from obhut.consent.rules import RESTRICTION, Restriction
from obhut.kit import bulk
from obhut.kit.ids import new_id
from obhut.rights.ports import Batch, Kept, Outcome, Retained, Subject
from obhut.vault.errors import SubjectShreddedError

_STATES: Table = ConsentState.__table__  # type: ignore[assignment]

WHY_KEPT = (
    "proof of what you agreed to and when (GDPR Art. 7(1)); kept for legal claims (Art. 17(3)(e)); the address "
    "and device it was given from become unreadable with your key"
)


def _source(subject: Subject, event: ConsentEvent) -> dict[str, str] | None:
    if event.source_sealed is None:
        return None
    try:
        address, agent = json.loads(
            subject.keyring.subject(subject.customer_id).open("consent-source", event.source_sealed)
        )
    except SubjectShreddedError:
        return None
    return {"address": address, "user_agent": agent}


def _event(subject: Subject, event: ConsentEvent) -> dict[str, Any]:
    return {
        "purpose": event.purpose_key,
        "event": event.kind,
        "at": event.at.isoformat(),
        "until": event.until.isoformat() if event.until else None,
        "channel": event.channel,
        "notice_version": event.notice_version,
        "notice_sha256": event.notice_hash,
        "language": event.language,
        "by": "you" if event.actor == "customer" else "staff on your behalf",
        "source": _source(subject, event),
        "hash": event.hash,
    }


class ConsentHandler:
    domain = "consent"
    tables = frozenset({"consent_events", "consent_chains", "consent_states"})

    def export(self, subject: Subject) -> dict[str, Any]:
        session, workspace_id, customer_id = subject.session, subject.workspace_id, subject.customer_id
        events = service.ledger(session, workspace_id, customer_id)
        newest = {event.purpose_key: event for event in events}
        chain = session.get(ConsentChain, (workspace_id, customer_id))
        return {
            "events": [_event(subject, e) for e in events],
            "chain_intact": service.first_broken(events, chain) is None,
            "receipts": {
                key: service.receipt(session, subject.keyring, workspace_id, event) for key, event in newest.items()
            },
            "receipt_key": service.public_jwk(subject.keyring),
            "now": {key: service.check(session, workspace_id, customer_id, key).reason for key in sorted(newest)},
        }

    def erase_all(self, batch: Batch) -> None:
        session, workspace_id, ids = batch.session, batch.workspace_id, batch.customer_ids
        session.execute(
            delete(ConsentState)
            .where(
                ConsentState.workspace_id == workspace_id,
                bulk.among(session, ConsentState.customer_id, ids),
            )
            .execution_options(synchronize_session=False)  # the states are not loaded in a purge
        )
        rows = [  # the mark that stops any use; none where the purge deletes the row next
            {"workspace_id": workspace_id, "customer_id": c, "purpose_key": RESTRICTION,
             "kind": Restriction.ERASED.value, "until": None, "notice_major": None, "event_id": new_id()}
            for c in ids if c not in batch.rows_go
        ]  # fmt: skip
        bulk.insert_rows(session, _STATES, rows)
        for customer_id in ids:
            cache.changed(session, workspace_id, customer_id)

    def erase(self, subject: Subject, retained: Retained) -> Outcome:
        del retained  # whatever is kept serves legal obligations only: the restriction says so to every check
        session, workspace_id, customer_id = subject.session, subject.workspace_id, subject.customer_id
        session.execute(
            delete(ConsentState).where(
                ConsentState.workspace_id == workspace_id, ConsentState.customer_id == customer_id
            )
        )
        cache.changed(session, workspace_id, customer_id)
        restrictions.restrict(session, workspace_id, customer_id, Restriction.ERASED, tell=False)
        count = len(service.ledger(session, workspace_id, customer_id))
        kept = [Kept(f"consent ledger: {count} events", WHY_KEPT)] if count else []
        return Outcome(self.domain, erased=["your current consent choices"], kept=kept)
