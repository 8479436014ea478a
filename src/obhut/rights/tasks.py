"""The scheduled rights work: requests whose deadline is a week away, or has passed, are announced once
each through the outbox (`request.due`, ids only: the business's ticket system can take it) and the access
log, where the privacy officer's queue shows them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from obhut.audit import rules as audit_rules
from obhut.audit import service as audit
from obhut.audit.service import Context, Event
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.outbox import service as outbox
from obhut.rights.models import SubjectRequest
from obhut.rights.rules import Status
from obhut.rights.service import RightsService

SYSTEM = Context("system:rights", "system", "local", "obhut-rights", "")


def remind_all(sessions: sessionmaker[Session], rights: RightsService) -> int:
    with sessions() as session:
        open_states = (Status.RECEIVED.value, Status.VERIFIED.value)
        workspaces = session.scalars(
            select(SubjectRequest.workspace_id).where(SubjectRequest.status.in_(open_states)).distinct()
        ).all()
    reminded = 0
    for workspace_id in workspaces:
        with unit_of_work(sessions) as session:
            for request in rights.due_reminders(session, workspace_id):
                overdue = request.deadline <= now()
                data = {"request": request.request_id, "right": request.right, "deadline": request.deadline.isoformat(),
                        "overdue": overdue}  # fmt: skip
                outbox.emit(session, workspace_id, "request.due", data=data)
                event = Event(audit_rules.action("worker", "request", "remind"), target=f"request:{request.request_id}")
                audit.record(session, None, workspace_id, SYSTEM, event)
                reminded += 1
    return reminded
