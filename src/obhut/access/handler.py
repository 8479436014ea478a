"""Staff access's answer to data-subject requests: the break-glass reveals of the customer's data (who by
role, when, for which purpose) for an export; on erasure they stay, as the record the privacy officer
reviews, and their justifications become unreadable with the customer's key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from obhut.access.models import BreakGlass
from obhut.rights.ports import Batch, Kept, Outcome, Retained, Subject

WHY_KEPT = "the record of emergency access to your data, which the privacy officer must be able to review (Art. 5(2))"


class AccessHandler:
    domain = "access"
    tables = frozenset({"access_break_glass"})

    def _events(self, subject: Subject) -> list[BreakGlass]:
        query = select(BreakGlass).where(
            BreakGlass.workspace_id == subject.workspace_id, BreakGlass.customer_id == subject.customer_id
        )
        return list(subject.session.scalars(query.order_by(BreakGlass.created_at)))

    def export(self, subject: Subject) -> dict[str, Any]:
        return {
            "emergency_access": [
                {"at": e.created_at.isoformat(), "who": e.role.replace("_", " "), "purpose": e.purpose,
                 "reviewed": e.reviewed_at is not None}
                for e in self._events(subject)
            ]
        }  # fmt: skip

    def erase(self, subject: Subject, retained: Retained) -> Outcome:
        del retained
        count = len(self._events(subject))
        return Outcome(self.domain, kept=[Kept(f"{count} emergency accesses", WHY_KEPT)] if count else [])

    def erase_all(self, batch: Batch) -> None:
        del batch  # nothing of theirs goes: what this domain holds is kept (see `erase`)
