"""Retention's answer to data-subject requests: the legal holds that name the customer (an export lists
them; they are why an erasure keeps data, and they stay until released)."""

from __future__ import annotations

from typing import Any

from obhut.retention import service
from obhut.rights.ports import Batch, Kept, Outcome, Retained, Subject


class RetentionHandler:
    domain = "retention"
    tables = frozenset({"retention_holds"})

    def export(self, subject: Subject) -> dict[str, Any]:
        holds = [
            h for h in service.hold_rows(subject.session, subject.workspace_id) if h.customer_id == subject.customer_id
        ]
        policies = service.policies(subject.session, subject.workspace_id)
        return {
            "legal_holds": [{"since": h.created_at.isoformat(), "category": h.category or "all"} for h in holds],
            "retention": [
                {"category": p.category, "days": p.days, "counts_from": p.anchor.value, "then": p.action.value,
                 "legal_duty": p.legal_duty or None}
                for p in policies
            ],
        }  # fmt: skip

    def erase(self, subject: Subject, retained: Retained) -> Outcome:
        del retained
        holds = [
            h for h in service.hold_rows(subject.session, subject.workspace_id) if h.customer_id == subject.customer_id
        ]
        kept = [Kept(f"legal hold on {h.category or 'all'} data", "a legal hold, until it is released") for h in holds]
        return Outcome(self.domain, kept=kept)

    def erase_all(self, batch: Batch) -> None:
        del batch  # nothing of theirs goes: what this domain holds is kept (see `erase`)
