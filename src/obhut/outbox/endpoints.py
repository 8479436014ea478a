"""The outbox over HTTP: recipients (processors and third parties: what they receive, for which purposes,
where), the delivery backlog per destination, and the dead letters an admin can replay."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Request, status
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from obhut.access.dependencies import CurrentPrincipal
from obhut.access.rules import Permission
from obhut.audit import rules as audit
from obhut.audit.dependencies import AuditTrail
from obhut.audit.service import Event
from obhut.consent import service as consent
from obhut.container import container_of
from obhut.kit.web import DbSession
from obhut.outbox import service
from obhut.outbox.models import OutboxDelivery, OutboxRecipient

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["outbox"])
TOPIC_PREFIX = r"^[a-z][a-z0-9_-]{0,30}(\.[a-z][a-z0-9_-]{0,30}){0,3}$"


class RecipientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: Literal["processor", "third_party"]
    url: AnyHttpUrl = Field(description="Where events are POSTed, signed in the Standard Webhooks style")
    topics: list[Annotated[str, Field(pattern=TOPIC_PREFIX)]] = Field(
        min_length=1, max_length=20, description="Event types or their prefixes: consent, customer.erased, ..."
    )
    purposes: list[Annotated[str, Field(max_length=40)]] = Field(
        default_factory=list, max_length=40, description="Purposes it receives data for"
    )
    categories: list[str] = Field(default_factory=list, max_length=10, description="The data categories it gets")


class RecipientOut(BaseModel):
    recipient_id: str
    name: str
    role: str
    url: str
    topics: list[str]
    purposes: list[str]
    categories: list[str]
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, row: OutboxRecipient) -> RecipientOut:
        return cls(
            recipient_id=row.recipient_id,
            name=row.name,
            role=row.role,
            url=row.url,
            topics=row.topics.split(),
            purposes=row.purposes.split(),
            categories=row.categories.split(),
            active=row.active,
            created_at=row.created_at,
        )


class Registered(RecipientOut):
    secret: str = Field(description="The signing secret (whsec_...): shown only now")


class DeadLetterOut(BaseModel):
    destination: str
    event_id: str
    attempts: int
    last_error: str
    failed_at: datetime

    @classmethod
    def of(cls, row: OutboxDelivery) -> DeadLetterOut:
        return cls(
            destination=row.destination,
            event_id=row.event_id,
            attempts=row.attempts,
            last_error=row.last_error,
            failed_at=row.updated_at,
        )


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination: str | None = Field(None, max_length=60, description="Only this destination's (webhook:<id>)")
    event_id: str | None = Field(None, max_length=36, description="Only this event")


@router.post("/recipients", status_code=status.HTTP_201_CREATED)
def register_recipient(
    workspace_id: str,
    body: RecipientIn,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
) -> Registered:
    """Registers a processor or third party. It receives the event types named in `topics`, from now on;
    an event about a purpose reaches it only if the purpose is among its `purposes`, and one that uses data
    only while the customer allows that purpose."""
    principal.require(Permission.POLICY_MANAGE)
    for key in body.purposes:
        consent.purpose(session, workspace_id, key)
    keyring = container_of(request).vault.open(session, workspace_id)
    row, secret = service.register(
        session,
        keyring,
        workspace_id,
        name=body.name,
        role=body.role,
        url=str(body.url),
        topics=body.topics,
        purposes=body.purposes,
        categories=body.categories,
    )
    trail.record(Event(audit.action("api", "recipient", "register"), target=f"recipient:{row.recipient_id}"))
    return Registered(**RecipientOut.of(row).model_dump(), secret=secret)


@router.get("/recipients")
def list_recipients(
    workspace_id: str, session: DbSession, principal: CurrentPrincipal, trail: AuditTrail
) -> list[RecipientOut]:
    principal.require(Permission.POLICY_MANAGE)
    trail.record(Event(audit.action("api", "recipient", "list")))
    return [RecipientOut.of(r) for r in service.recipients(session, workspace_id)]


@router.delete("/recipients/{recipient_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_recipient(
    workspace_id: str, recipient_id: str, session: DbSession, principal: CurrentPrincipal, trail: AuditTrail
) -> None:
    """Stops deliveries to the recipient; it stays in the register (who received what stays answerable)."""
    principal.require(Permission.POLICY_MANAGE)
    service.deactivate(session, workspace_id, recipient_id)
    trail.record(Event(audit.action("api", "recipient", "remove"), target=f"recipient:{recipient_id}"))


@router.get("/outbox")
def outbox_status(
    workspace_id: str, session: DbSession, principal: CurrentPrincipal, trail: AuditTrail
) -> dict[str, int]:
    """Per destination, how many events it has yet to receive; and how many are dead."""
    principal.require(Permission.POLICY_MANAGE)
    trail.record(Event(audit.action("api", "outbox", "status")))
    return service.backlog(session, workspace_id) | {"dead": len(service.dead_letters(session, workspace_id))}


@router.get("/outbox/dead-letters")
def dead_letters(
    workspace_id: str, session: DbSession, principal: CurrentPrincipal, trail: AuditTrail
) -> list[DeadLetterOut]:
    principal.require(Permission.POLICY_MANAGE)
    trail.record(Event(audit.action("api", "outbox", "dead-letters")))
    return [DeadLetterOut.of(row) for row in service.dead_letters(session, workspace_id)]


@router.post("/outbox/dead-letters/replay")
def replay_dead_letters(
    workspace_id: str, body: ReplayIn, session: DbSession, principal: CurrentPrincipal, trail: AuditTrail
) -> dict[str, int]:
    """Puts dead deliveries back in line: the relay tries them again at once, with the same idempotency key."""
    principal.require(Permission.POLICY_MANAGE)
    replayed = service.replay(session, workspace_id, body.destination, body.event_id)
    trail.record(Event(audit.action("api", "outbox", "replay"), target=body.destination or body.event_id))
    return {"replayed": replayed}
