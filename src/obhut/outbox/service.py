"""Writing to the outbox (in the caller's transaction), sequencing what committed, and the bookkeeping of
delivery: cursors, retries, dead letters and recipients."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func, select, text, update
from sqlalchemy.orm import Session

from obhut.kit import bulk
from obhut.kit.clock import now
from obhut.kit.errors import NotFoundError
from obhut.kit.ids import new_id, new_ids
from obhut.outbox import rules
from obhut.outbox.models import OutboxCursor, OutboxDelivery, OutboxEvent, OutboxHead, OutboxRecipient
from obhut.outbox.rules import Outgoing
from obhut.vault.keyring import Keyring

RETRYING, DEAD = "retrying", "dead"
_EVENTS: Table = OutboxEvent.__table__  # type: ignore[assignment]


def emit(
    session: Session,
    workspace_id: str,
    topic: str,
    *,
    customer_id: str | None = None,
    purpose: str | None = None,
    data: Mapping[str, Any] | None = None,
    event_id: str | None = None,
) -> str:
    """Adds an event to the outbox in the caller's transaction: it leaves only if that transaction commits.
    `data` must hold no personal data (ids, keys, kinds, times). Returns the idempotency key."""
    event_id = event_id or new_id()
    values = {
        "workspace_id": workspace_id,
        "event_id": event_id,
        "position": None,
        "topic": rules.check_topic(topic),
        "customer_id": customer_id,
        "purpose_key": purpose,
        "occurred_at": now(),
        "data": _data_text(data or {}),
    }
    session.connection().execute(_EVENTS.insert(), [values])
    return event_id


def emit_many(session: Session, workspace_id: str, topic: str, about: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """`emit` for one event per customer in `about` ((customer id, data) pairs), in one statement; their ids
    in one call."""
    at, topic = now(), rules.check_topic(topic)
    rows = [
        {"workspace_id": workspace_id, "event_id": event_id, "position": None, "topic": topic, "customer_id": customer,
         "purpose_key": None, "occurred_at": at, "data": _data_text(data)}
        for (customer, data), event_id in zip(about, new_ids(len(about)), strict=True)
    ]  # fmt: skip
    bulk.insert_rows(session, _EVENTS, rows)


def _data_text(data: Mapping[str, Any]) -> str:
    return json.dumps(dict(data), sort_keys=True, default=str, separators=(",", ":"))


# Positions in commit order: the waiting events (committed, unsequenced) get the next numbers in one
# statement, while the head row is locked; runs the same on SQLite (3.33+) and PostgreSQL.
_SEQUENCE = text(
    "UPDATE outbox_events SET position = :first + w.n - 1 FROM ("
    " SELECT event_id, row_number() OVER (ORDER BY occurred_at, event_id) AS n FROM outbox_events"
    " WHERE workspace_id = :w AND position IS NULL ORDER BY occurred_at, event_id LIMIT :batch) AS w "
    "WHERE outbox_events.workspace_id = :w AND outbox_events.event_id = w.event_id"
)


def sequence(session: Session, workspace_id: str, batch: int = 5000) -> int:
    """Gives positions to up to `batch` committed events; how many. Concurrent sequencers serialise on the
    workspace's head row (a write to it first: SQLite's write lock, PostgreSQL's row lock), so positions are
    dense and never reused."""
    if session.get(OutboxHead, workspace_id) is None:
        session.add(OutboxHead(workspace_id=workspace_id, length=0))
        session.flush()
    session.execute(update(OutboxHead).where(OutboxHead.workspace_id == workspace_id).values(length=OutboxHead.length))
    head = session.get(OutboxHead, workspace_id, populate_existing=True)
    assert head is not None
    placed = session.connection().execute(_SEQUENCE, {"first": head.length, "w": workspace_id, "batch": batch})
    head.length += placed.rowcount
    return placed.rowcount


def waiting_workspaces(session: Session) -> list[str]:
    query = select(OutboxEvent.workspace_id).where(OutboxEvent.position.is_(None)).distinct()
    return list(session.scalars(query))


def workspaces(session: Session) -> list[str]:
    return list(session.scalars(select(OutboxHead.workspace_id)))


def length(session: Session, workspace_id: str) -> int:
    head = session.get(OutboxHead, workspace_id)
    return head.length if head else 0


_COLUMNS = (
    _EVENTS.c.event_id, _EVENTS.c.position, _EVENTS.c.topic, _EVENTS.c.customer_id, _EVENTS.c.purpose_key,
    _EVENTS.c.occurred_at, _EVENTS.c.data,
)  # fmt: skip


def _outgoing(workspace_id: str, row: Sequence[Any]) -> Outgoing:
    event_id, position, topic, customer_id, purpose, at, data = row
    return Outgoing(event_id, workspace_id, position, topic, customer_id, purpose, at, data)


def batch_from(session: Session, workspace_id: str, position: int, limit: int) -> list[Outgoing]:
    """Sequenced events from `position` on, in order. Positions are dense, so the batch is a range: a plan
    that uses the position index even before the table's statistics know how large it has grown."""
    query = (
        select(*_COLUMNS)
        .where(
            _EVENTS.c.workspace_id == workspace_id,
            _EVENTS.c.position >= position,
            _EVENTS.c.position < position + limit,
        )
        .order_by(_EVENTS.c.position)
    )
    return [_outgoing(workspace_id, row) for row in session.connection().execute(query)]


def about(session: Session, workspace_id: str, customer_id: str) -> list[Outgoing]:
    """The events about one customer still in the outbox (delivered ones are pruned after a while)."""
    query = select(*_COLUMNS).where(_EVENTS.c.workspace_id == workspace_id, _EVENTS.c.customer_id == customer_id)
    return [_outgoing(workspace_id, row) for row in session.connection().execute(query.order_by(_EVENTS.c.position))]


def events(session: Session, workspace_id: str, event_ids: Sequence[str]) -> list[Outgoing]:
    query = select(*_COLUMNS).where(_EVENTS.c.workspace_id == workspace_id, _EVENTS.c.event_id.in_(event_ids))
    return [_outgoing(workspace_id, row) for row in session.connection().execute(query.order_by(_EVENTS.c.position))]


# --- cursors --------------------------------------------------------------------------------------------
def cursor(session: Session, workspace_id: str, destination: str, start: int = 0) -> OutboxCursor:
    found = session.get(OutboxCursor, (workspace_id, destination))
    if found is None:
        found = OutboxCursor(workspace_id=workspace_id, destination=destination, position=start, attempts=0)
        session.add(found)
        session.flush()
    return found


def advance(session: Session, workspace_id: str, destination: str, position: int) -> None:
    """Moves the cursor forward (never back: two relays at once cost duplicates, never a gap)."""
    session.execute(
        update(OutboxCursor)
        .where(
            OutboxCursor.workspace_id == workspace_id,
            OutboxCursor.destination == destination,
            OutboxCursor.position < position,
        )
        .values(position=position, attempts=0, next_attempt_at=None, last_error=None)
    )


def hold(session: Session, workspace_id: str, destination: str, error: str, base_delay: float) -> None:
    """The destination failed as a whole (NATS down, a webhook refusing everything): its cursor waits, with
    backoff of at most five minutes, and nothing moves past it."""
    found = cursor(session, workspace_id, destination)
    found.attempts += 1
    found.next_attempt_at = now() + rules.retry_delay(found.attempts, base_delay, cap=300.0)
    found.last_error = error


# --- webhook retries and dead letters ---------------------------------------------------------------------
@dataclass(frozen=True)
class Failure:
    destination: str
    event_id: str
    error: str


def failed(session: Session, workspace_id: str, failures: Sequence[Failure], base_delay: float, limit: int) -> None:
    """Schedules each failed delivery again with backoff; after `limit` tries it is dead."""
    for failure in failures:
        key = (workspace_id, failure.destination, failure.event_id)
        row = session.get(OutboxDelivery, key) or OutboxDelivery(
            workspace_id=workspace_id, destination=failure.destination, event_id=failure.event_id, attempts=0
        )
        session.add(row)
        row.attempts += 1
        row.state = DEAD if row.attempts >= limit else RETRYING
        row.next_attempt_at = now() + rules.retry_delay(row.attempts, base_delay)
        row.last_error, row.updated_at = failure.error, now()


def delivered(session: Session, workspace_id: str, destination: str, event_ids: Sequence[str]) -> None:
    if event_ids:
        session.execute(
            delete(OutboxDelivery).where(
                OutboxDelivery.workspace_id == workspace_id,
                OutboxDelivery.destination == destination,
                OutboxDelivery.event_id.in_(event_ids),
            )
        )


def due(session: Session, workspace_id: str, limit: int = 500) -> list[OutboxDelivery]:
    query = select(OutboxDelivery).where(
        OutboxDelivery.workspace_id == workspace_id,
        OutboxDelivery.state == RETRYING,
        OutboxDelivery.next_attempt_at <= now(),
    )
    return list(session.scalars(query.order_by(OutboxDelivery.next_attempt_at).limit(limit)))


def dead_letters(session: Session, workspace_id: str) -> list[OutboxDelivery]:
    query = select(OutboxDelivery).where(OutboxDelivery.workspace_id == workspace_id, OutboxDelivery.state == DEAD)
    return list(session.scalars(query.order_by(OutboxDelivery.updated_at)))


def replay(session: Session, workspace_id: str, destination: str | None = None, event_id: str | None = None) -> int:
    """Puts dead letters back in line (all, one destination's, or one); how many."""
    live = [rules.WEBHOOK + r.recipient_id for r in recipients(session, workspace_id, active_only=True)]
    query = update(OutboxDelivery).where(
        OutboxDelivery.workspace_id == workspace_id, OutboxDelivery.state == DEAD, OutboxDelivery.destination.in_(live)
    )
    if destination is not None:
        query = query.where(OutboxDelivery.destination == destination)
    if event_id is not None:
        query = query.where(OutboxDelivery.event_id == event_id)
    done = session.execute(query.values(state=RETRYING, attempts=0, next_attempt_at=now(), updated_at=now()))
    return int(done.rowcount)  # type: ignore[attr-defined]


# --- recipients ---------------------------------------------------------------------------------------------
def _secret_context(workspace_id: str, recipient_id: str) -> str:
    return f"webhook-secret:{workspace_id}:{recipient_id}"


def register(
    session: Session,
    keyring: Keyring,
    workspace_id: str,
    *,
    name: str,
    role: str,
    url: str,
    topics: Sequence[str],
    purposes: Sequence[str],
    categories: Sequence[str],
) -> tuple[OutboxRecipient, str]:
    """A new recipient and its signing secret (`whsec_...`, shown once). It receives events from now on."""
    recipient_id = new_id()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    row = OutboxRecipient(
        workspace_id=workspace_id,
        recipient_id=recipient_id,
        name=name,
        role=role,
        url=url,
        topics=" ".join(topics),
        purposes=" ".join(purposes),
        categories=" ".join(categories),
        secret_sealed=keyring.seal_secret(_secret_context(workspace_id, recipient_id), secret.encode()),
        active=True,
        created_at=now(),
    )
    session.add(row)
    cursor(session, workspace_id, rules.WEBHOOK + recipient_id, start=length(session, workspace_id))
    return row, secret


def secret_of(keyring: Keyring, recipient: OutboxRecipient) -> str:
    context = _secret_context(recipient.workspace_id, recipient.recipient_id)
    return keyring.open_secret(context, recipient.secret_sealed).decode()


def recipients(session: Session, workspace_id: str, *, active_only: bool = False) -> list[OutboxRecipient]:
    query = select(OutboxRecipient).where(OutboxRecipient.workspace_id == workspace_id)
    if active_only:
        query = query.where(OutboxRecipient.active.is_(True))
    return list(session.scalars(query.order_by(OutboxRecipient.created_at)))


def recipient(session: Session, workspace_id: str, recipient_id: str) -> OutboxRecipient:
    found = session.get(OutboxRecipient, (workspace_id, recipient_id))
    if found is None:
        raise NotFoundError(f"no recipient {recipient_id} in workspace '{workspace_id}'")
    return found


def deactivate(session: Session, workspace_id: str, recipient_id: str) -> None:
    """Stops deliveries to a recipient; its pending retries go (it stays in the register)."""
    recipient(session, workspace_id, recipient_id).active = False
    session.execute(
        delete(OutboxDelivery).where(
            OutboxDelivery.workspace_id == workspace_id, OutboxDelivery.destination == rules.WEBHOOK + recipient_id
        )
    )


def prune(session: Session, workspace_id: str, older_than: datetime) -> int:
    """Deletes events every destination has received (below the lowest cursor of NATS and the active
    recipients), that no retry or dead letter names, and that are older than `older_than`; how many."""
    live = [rules.WEBHOOK + r.recipient_id for r in recipients(session, workspace_id, active_only=True)]
    lowest = session.scalar(
        select(func.min(OutboxCursor.position)).where(
            OutboxCursor.workspace_id == workspace_id,
            (OutboxCursor.destination == rules.NATS) | OutboxCursor.destination.in_(live),
        )
    )
    reach = length(session, workspace_id) if lowest is None else lowest
    pending = select(OutboxDelivery.event_id).where(OutboxDelivery.workspace_id == workspace_id)
    done = session.execute(
        delete(OutboxEvent).where(
            OutboxEvent.workspace_id == workspace_id,
            OutboxEvent.position < reach,
            OutboxEvent.occurred_at < older_than,
            OutboxEvent.event_id.not_in(pending),
        )
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


def backlog(session: Session, workspace_id: str) -> dict[str, int]:
    """Per destination, how many sequenced events it has yet to receive."""
    total = length(session, workspace_id)
    query = select(OutboxCursor.destination, OutboxCursor.position).where(OutboxCursor.workspace_id == workspace_id)
    waiting = session.scalar(
        select(func.count()).where(_EVENTS.c.workspace_id == workspace_id, _EVENTS.c.position.is_(None))
    )
    return {"unsequenced": int(waiting or 0)} | {d: total - p for d, p in session.execute(query)}
