"""The outbox's answer to data-subject requests: which recipients were sent news of the customer's data
(an export lists them); on erasure the events stay until delivered, since they carry the erasure itself
to every recipient (GDPR Art. 19), and hold ids only."""

from __future__ import annotations

from typing import Any

from obhut.outbox import rules, service
from obhut.outbox.models import OutboxCursor, OutboxRecipient
from obhut.rights.ports import Batch, Kept, Outcome, Retained, Subject

WHY_KEPT = "recipients must be told of your erasure (GDPR Art. 19); these notices hold ids, not your data"


def _subscription(recipient: OutboxRecipient) -> rules.Subscription:
    return rules.Subscription(recipient.topics.split(), recipient.purposes.split())


class OutboxHandler:
    domain = "outbox"
    tables = frozenset({"outbox_events"})

    def export(self, subject: Subject) -> dict[str, Any]:
        session, workspace_id = subject.session, subject.workspace_id
        events = service.about(session, workspace_id, subject.customer_id)
        sent = []
        for recipient in service.recipients(session, workspace_id):
            cursor = session.get(OutboxCursor, (workspace_id, f"{rules.WEBHOOK}{recipient.recipient_id}"))
            reached = cursor.position if cursor else 0
            wanted = [
                e
                for e in events
                if e.position is not None and e.position < reached and _subscription(recipient).wants(e)
            ]
            sent.append(
                {
                    "recipient": recipient.name,
                    "role": recipient.role.replace("_", " "),
                    "purposes": recipient.purposes.split(),
                    "categories": recipient.categories.split(),
                    "receives_data_for_you": bool(wanted),
                    "notices_sent": [
                        {"type": e.topic, "purpose": e.purpose, "at": e.occurred_at.isoformat()} for e in wanted
                    ],
                }
            )
        return {"recipients": sent}

    def erase(self, subject: Subject, retained: Retained) -> Outcome:
        del retained
        told = [
            r.name
            for r in service.recipients(subject.session, subject.workspace_id, active_only=True)
            if any(t == "customer.erased" or "customer.erased".startswith(f"{t}.") for t in r.topics.split())
        ]
        pending = len(service.about(subject.session, subject.workspace_id, subject.customer_id))
        return Outcome(
            self.domain,
            erased=[f"recipients told: {', '.join(told)}" if told else "no recipient receives erasure notices"],
            kept=[Kept(f"{pending} change notices about you, until delivered", WHY_KEPT)] if pending else [],
        )

    def erase_all(self, batch: Batch) -> None:
        del batch  # nothing of theirs goes: what this domain holds is kept (see `erase`)
