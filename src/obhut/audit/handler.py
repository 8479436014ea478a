"""The access log's answer to data-subject requests: "who looked at my data" for an export; on erasure the
entries stay (the log must stay verifiable) and become unreadable with the customer's key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from obhut.access.policies import PolicyService
from obhut.audit import repository, rules, service
from obhut.audit.models import AuditEntry
from obhut.audit.schemas import EntryFilter
from obhut.rights.ports import Batch, Kept, Outcome, Retained, Subject
from obhut.vault.keyring import Keyring

WHY_KEPT = (
    "the tamper-evident record of who accessed your data (GDPR Art. 5(2) and 32); it names you only by a "
    "pseudonym, and the copy of your id in it is unreadable once your key is destroyed"
)


def report(session: Session, keyring: Keyring, customer_id: str, language: str) -> list[dict[str, Any]]:
    """Every entry about the customer, newest first, in words fit to hand to them (staff are not named)."""
    workspace_id = keyring.workspace_id
    everything = repository.entries(workspace_id, EntryFilter(), service.pseudonym(keyring, customer_id)).limit(None)
    titles = PolicyService().purposes(session, workspace_id)
    return [
        {
            "at": row.at.isoformat(),
            "who": row.role.replace("_", " "),
            "what": rules.describe(language, row.action),
            "data": [rules.words(language, c) for c in row.categories.split()],
            "why": titles.get(row.purpose, row.purpose) if row.purpose else None,
            "shown": rules.words(language, row.outcome),
        }
        for row in session.scalars(everything.execution_options(yield_per=1000))
    ]


class AuditHandler:
    domain = "audit"
    tables = frozenset({"audit_entries"})

    def export(self, subject: Subject) -> dict[str, Any]:
        entries = report(subject.session, subject.keyring, subject.customer_id, subject.language)
        return {"who_looked_at_my_data": entries}

    def erase(self, subject: Subject, retained: Retained) -> Outcome:
        del retained  # the log is kept whole: removing entries would break its proofs
        pseudonym = service.pseudonym(subject.keyring, subject.customer_id)
        count = subject.session.scalar(
            select(func.count()).where(AuditEntry.workspace_id == subject.workspace_id, AuditEntry.subject == pseudonym)
        )
        return Outcome(self.domain, kept=[Kept(f"access log: {count} entries about you", WHY_KEPT)])

    def erase_all(self, batch: Batch) -> None:
        del batch  # nothing of theirs goes: what this domain holds is kept (see `erase`)
