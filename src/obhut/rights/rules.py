"""Data-subject requests, pure: the rights, the statuses a request moves through, its statutory deadline
(GDPR Art. 12(3): one month, extendable by two more with a reason) and when to remind. No database or web."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from enum import StrEnum

from obhut.kit.errors import ConflictError


class Right(StrEnum):
    ACCESS = "access"  # Art. 15
    PORTABILITY = "portability"  # Art. 20
    RECTIFICATION = "rectification"  # Art. 16
    ERASURE = "erasure"  # Art. 17
    RESTRICTION = "restriction"  # Art. 18
    OBJECTION = "objection"  # Art. 21


class Status(StrEnum):
    RECEIVED = "received"  # the requester's identity is not verified yet: nothing is released
    VERIFIED = "verified"
    COMPLETED = "completed"
    REJECTED = "rejected"


ARTICLES = {
    Right.ACCESS: "15",
    Right.PORTABILITY: "20",
    Right.RECTIFICATION: "16",
    Right.ERASURE: "17",
    Right.RESTRICTION: "18",
    Right.OBJECTION: "21",
}
REMIND_DAYS = 7  # a reminder this long before the deadline, and again once it has passed
MAX_EXTENSION_MONTHS = 2


class TransitionError(ConflictError):
    """A step the request's status does not allow (verifying twice, completing an unverified request)."""

    kind = "request-step"
    title = "Not possible at this step of the request"


def add_months(at: datetime, months: int) -> datetime:
    """The same day `months` later, or the month's last day where it has no such day (31 Jan + 1 = 28/29 Feb)."""
    month0 = at.month - 1 + months
    year, month = at.year + month0 // 12, month0 % 12 + 1
    return at.replace(year=year, month=month, day=min(at.day, calendar.monthrange(year, month)[1]))


def deadline(received_at: datetime) -> datetime:
    return add_months(received_at, 1)


def extended(received_at: datetime, months: int, reason: str, already: bool) -> datetime:
    """The deadline after an extension of `months` (at most two, once, with a reason the requester is told)."""
    if already:
        raise TransitionError("this request's deadline was extended once already; it cannot be extended again")
    if not 1 <= months <= MAX_EXTENSION_MONTHS:
        raise TransitionError(f"a deadline can be extended by 1 or {MAX_EXTENSION_MONTHS} months (Art. 12(3))")
    if len(reason.strip()) < 10:  # noqa: PLR2004
        raise TransitionError("say why the request needs more time: the requester must be told (Art. 12(3))")
    return add_months(received_at, 1 + months)


def require(status: Status, step: str) -> None:
    """Refuses a step the status does not allow, with what to do instead."""
    allowed = {
        "verify": {Status.RECEIVED},
        "extend": {Status.RECEIVED, Status.VERIFIED},
        "complete": {Status.VERIFIED},
        "reject": {Status.RECEIVED, Status.VERIFIED},
        "release": {Status.VERIFIED, Status.COMPLETED},
    }[step]
    if status in allowed:
        return
    if status is Status.RECEIVED:
        raise TransitionError(f"verify the requester's identity before you {step} this request")
    raise TransitionError(f"this request is {status.value}; it cannot {step} any more")


def needs_reminder(due: datetime, at: datetime, reminded_at: datetime | None) -> bool:
    """Once when the deadline is a week away, and once more when it has passed."""
    if at >= due:
        return reminded_at is None or reminded_at < due
    return at >= due - timedelta(days=REMIND_DAYS) and reminded_at is None
