"""The requests' own answer to data-subject requests: an export lists the customer's requests and their
outcomes; an erasure keeps them, as the proof that each was answered (Art. 5(2), 12)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from obhut.kit import bulk
from obhut.rights.models import SubjectRequest
from obhut.rights.ports import Batch, Kept, Outcome, Retained, Subject

WHY_KEPT = "proof that your requests were answered, and how (GDPR Art. 5(2) and 12); they hold no data about you"


def requests_of(subject: Subject) -> list[SubjectRequest]:
    query = select(SubjectRequest).where(
        SubjectRequest.workspace_id == subject.workspace_id, SubjectRequest.customer_id == subject.customer_id
    )
    return list(subject.session.scalars(query.order_by(SubjectRequest.received_at)))


class RightsHandler:
    domain = "rights"
    tables = frozenset({"rights_requests"})

    def export(self, subject: Subject) -> dict[str, Any]:
        return {
            "requests": [
                {
                    "id": r.request_id, "right": r.right, "status": r.status, "received_at": r.received_at.isoformat(),
                    "deadline": r.deadline.isoformat(),
                    "completed_at": r.completed_at.isoformat() if r.completed_at else None,
                    "outcome": r.outcome, "certificate": r.certificate,
                }
                for r in requests_of(subject)
            ]
        }  # fmt: skip

    def erase_all(self, batch: Batch) -> None:
        ids = bulk.among(batch.session, SubjectRequest.customer_id, batch.customer_ids)
        batch.session.execute(
            update(SubjectRequest)
            .where(SubjectRequest.workspace_id == batch.workspace_id, ids)
            .values(details_sealed=None, extension_sealed=None)
            .execution_options(synchronize_session=False)  # no request of theirs is loaded in a purge
        )

    def erase(self, subject: Subject, retained: Retained) -> Outcome:
        del retained
        requests = requests_of(subject)
        for request in requests:
            request.details_sealed = request.extension_sealed = None  # what the requester wrote goes
        kept = [Kept(f"{len(requests)} requests", WHY_KEPT)]
        return Outcome(self.domain, erased=["what you wrote in your requests"], kept=kept)
