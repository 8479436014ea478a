"""Consent over HTTP: the purpose catalogue and its notices (policy managers), a customer's consent events
(staff acting for the customer; each answered with a signed receipt), the current state per purpose, the
ledger with its chain checked, and the public key that verifies receipts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from obhut.access.dependencies import CurrentPrincipal
from obhut.access.rules import Permission
from obhut.audit import rules as audit
from obhut.audit.dependencies import AuditTrail, Trail
from obhut.audit.service import Event
from obhut.consent import cache, rules, service
from obhut.consent.models import ConsentChain, ConsentEvent, ConsentNotice, ConsentPurpose
from obhut.consent.rules import Channel, Kind, LegalBasis
from obhut.container import container_of
from obhut.kit.clock import now
from obhut.kit.errors import ConflictError
from obhut.kit.web import DbSession
from obhut.vault.keyring import Keyring

router = APIRouter(prefix="/workspaces/{workspace_id}/consent", tags=["consent"])
KEY = r"^[a-z][a-z0-9_]{1,39}$"


class PurposeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title_en: str = Field(min_length=1, max_length=200)
    title_de: str = Field(min_length=1, max_length=200)
    description_en: str = Field(min_length=1, max_length=4000)
    description_de: str = Field(min_length=1, max_length=4000)
    legal_basis: LegalBasis
    categories: list[str] = Field(default_factory=list, max_length=10, description="identity, contact, ...")
    recipients: str = Field("", max_length=2000)
    retention: str = Field("", max_length=200)
    sale_or_sharing: bool = Field(default=False, description="Global Privacy Control (Sec-GPC: 1) objects to it")


class NoticeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=r"^\d{1,4}(\.\d{1,4})?$", description="MAJOR.MINOR; a new major needs consent again")
    language: str = Field(pattern="^(de|en)$")
    text: str = Field(min_length=1, max_length=100_000)


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(pattern=KEY)
    kind: Kind
    channel: Channel = Channel.API
    notice_version: str | None = Field(None, max_length=20)
    language: str = Field("de", pattern="^(de|en)$")
    until: AwareDatetime | None = Field(None, description="A time-limited consent ends here (with a time zone)")


class EventOut(BaseModel):
    event_id: str
    position: int
    purpose: str
    kind: str
    at: datetime
    until: datetime | None
    channel: str
    notice_version: str | None
    notice_hash: str | None
    actor: str
    hash: str

    @classmethod
    def of(cls, row: ConsentEvent) -> EventOut:
        return cls(
            event_id=row.event_id,
            position=row.position,
            purpose=row.purpose_key,
            kind=row.kind,
            at=row.at,
            until=row.until,
            channel=row.channel,
            notice_version=row.notice_version,
            notice_hash=row.notice_hash,
            actor=row.actor,
            hash=row.hash,
        )


class Recorded(BaseModel):
    events: list[EventOut]
    receipts: list[str] = Field(description="Compact JWS (Ed25519): verify with GET .../consent/receipt-key")


class StateOut(BaseModel):
    purpose: str
    legal_basis: str
    allowed: bool
    reason: str


class LedgerOut(BaseModel):
    events: list[EventOut]
    intact: bool = Field(description="Whether every event still chains to the one before it")
    first_broken: int | None


def _keyring(request: Request, session: DbSession, workspace_id: str) -> Keyring:
    return container_of(request).vault.open(session, workspace_id)


class NoticeOut(BaseModel):
    version: str
    language: str
    major: int
    sha256: str
    published_at: datetime


class PurposeOut(PurposeIn):
    key: str
    updated_at: datetime
    notices: list[NoticeOut] = Field(description="Every published version, oldest first")


@router.get("/purposes", tags=["consent"])
def list_purposes(workspace_id: str, session: DbSession, principal: CurrentPrincipal) -> list[PurposeOut]:
    """The purpose catalogue as its managers keep it: each purpose with its notices' versions."""
    principal.require(Permission.POLICY_MANAGE)
    notices: dict[str, list[NoticeOut]] = {}
    query = select(ConsentNotice).where(ConsentNotice.workspace_id == workspace_id)
    for n in session.scalars(query.order_by(ConsentNotice.published_at, ConsentNotice.language)):
        notices.setdefault(n.purpose_key, []).append(
            NoticeOut(
                version=n.version, language=n.language, major=n.major, sha256=n.text_hash, published_at=n.published_at
            )
        )
    purposes = session.scalars(
        select(ConsentPurpose).where(ConsentPurpose.workspace_id == workspace_id).order_by(ConsentPurpose.key)
    )
    return [
        PurposeOut(
            key=p.key,
            title_en=p.title_en,
            title_de=p.title_de,
            description_en=p.description_en,
            description_de=p.description_de,
            legal_basis=LegalBasis(p.legal_basis),
            categories=p.categories.split(),
            recipients=p.recipients,
            retention=p.retention,
            sale_or_sharing=p.sale_or_sharing,
            updated_at=p.updated_at,
            notices=notices.get(p.key, []),
        )
        for p in purposes
    ]


@router.put("/purposes/{key}", tags=["consent"])
def define_purpose(
    workspace_id: str,
    key: Annotated[str, Path(pattern=KEY, description="Lower case letters, digits and _")],
    body: PurposeIn,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
) -> dict[str, Any]:
    principal.require(Permission.POLICY_MANAGE)
    row = session.get(ConsentPurpose, (workspace_id, key)) or ConsentPurpose(workspace_id=workspace_id, key=key)
    session.add(row)
    for name, value in body.model_dump().items():
        setattr(row, name, " ".join(value) if isinstance(value, list) else value)
    row.updated_at = now()
    cache.changed(session, workspace_id)  # the legal basis may have changed
    trail.record(Event(audit.action("api", "consent-purpose", "define"), target=f"purpose:{key}"))
    return {"key": key, **body.model_dump(mode="json")}


@router.post("/purposes/{key}/notices", status_code=status.HTTP_201_CREATED)
def publish_notice(
    workspace_id: str, key: str, body: NoticeIn, session: DbSession, principal: CurrentPrincipal, trail: AuditTrail
) -> dict[str, Any]:
    """A new notice version; its text and SHA-256 are kept. A new major version makes consents lapse."""
    principal.require(Permission.POLICY_MANAGE)
    service.purpose(session, workspace_id, key)
    if session.get(ConsentNotice, (workspace_id, key, body.version, body.language)) is not None:
        raise ConflictError(f"version {body.version} ({body.language}) is published already; publish a new version")
    major, _minor = rules.parse_version(body.version)
    row = ConsentNotice(
        workspace_id=workspace_id,
        purpose_key=key,
        version=body.version,
        language=body.language,
        major=major,
        text=body.text,
        text_hash=rules.notice_hash(body.text),
        published_at=now(),
    )
    session.add(row)
    session.flush()
    cache.changed(session, workspace_id)  # a new major makes earlier consents lapse
    trail.record(Event(audit.action("api", "consent-notice", "publish"), target=f"notice:{key}:{body.version}"))
    return {"purpose": key, "version": row.version, "language": row.language, "sha256": row.text_hash}


@router.post("/customers/{customer_id}/events", status_code=status.HTTP_201_CREATED)
def record_event(
    workspace_id: str,
    customer_id: str,
    body: EventIn,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
    sec_gpc: Annotated[str | None, Header(alias="Sec-GPC")] = None,
) -> Recorded:
    """Records a grant, denial, withdrawal or objection for the customer (staff acting on their behalf).
    `Sec-GPC: 1` also records an objection to every sale-or-sharing purpose."""
    principal.require(Permission.CUSTOMERS_WRITE)
    keyring = _keyring(request, session, workspace_id)
    change = service.Change(
        body.purpose,
        body.kind,
        body.channel,
        principal.actor,
        body.language,
        body.notice_version,
        body.until,
        source_of(request),
    )
    return record_changes(session, keyring, trail, customer_id, change, gpc=sec_gpc == "1")


def source_of(request: Request) -> tuple[str, str]:
    """Where a consent event came from (address, user agent): sealed under the customer's key in the ledger."""
    return (request.client.host if request.client else "", request.headers.get("user-agent", ""))


def record_changes(
    session: Session, keyring: Keyring, trail: Trail, customer_id: str, change: service.Change, *, gpc: bool
) -> Recorded:
    """Appends the change, with Global Privacy Control (`gpc`) also an objection to every sale-or-sharing
    purpose; logs each event and answers with their receipts. For staff acting for a customer and for the
    customer in the preference centre alike."""
    workspace_id = keyring.workspace_id
    changes = [change]
    if gpc:
        objections = session.scalars(
            select(ConsentPurpose.key).where(
                ConsentPurpose.workspace_id == workspace_id, ConsentPurpose.sale_or_sharing.is_(True)
            )
        ).all()
        changes += [
            service.Change(k, Kind.OBJECTED, change.channel, change.actor, change.language, source=change.source)
            for k in objections
        ]
    events = [service.append(session, keyring, workspace_id, customer_id, c) for c in changes]
    for event in events:
        verb = audit.action("api", "consent", event.kind)
        trail.record(Event(verb, customer_id=customer_id, purpose=event.purpose_key), keyring)
    receipts = [service.receipt(session, keyring, workspace_id, event) for event in events]
    return Recorded(events=[EventOut.of(e) for e in events], receipts=receipts)


@router.get("/customers/{customer_id}")
def customer_state(
    workspace_id: str, customer_id: str, session: DbSession, principal: CurrentPrincipal, trail: AuditTrail
) -> list[StateOut]:
    """Every catalogue purpose and whether the customer's data may be used for it right now."""
    principal.require(Permission.CUSTOMERS_READ)
    trail.record(Event(audit.action("api", "consent", "read"), customer_id=customer_id))
    purposes = session.scalars(select(ConsentPurpose.key).where(ConsentPurpose.workspace_id == workspace_id))
    out = []
    for key in sorted(purposes):
        about = service.purpose(session, workspace_id, key)
        decision = service.check(session, workspace_id, customer_id, key)
        out.append(
            StateOut(purpose=key, legal_basis=about.legal_basis, allowed=decision.allowed, reason=decision.reason)
        )
    return out


@router.get("/customers/{customer_id}/ledger")
def customer_ledger(
    workspace_id: str, customer_id: str, session: DbSession, principal: CurrentPrincipal, trail: AuditTrail
) -> LedgerOut:
    principal.require(Permission.CUSTOMERS_READ)
    events = service.ledger(session, workspace_id, customer_id)
    broken = service.first_broken(events, session.get(ConsentChain, (workspace_id, customer_id)))
    trail.record(Event(audit.action("api", "consent", "ledger-read"), customer_id=customer_id))
    return LedgerOut(events=[EventOut.of(e) for e in events], intact=broken is None, first_broken=broken)


@router.get("/receipt-key")
def receipt_key(workspace_id: str, request: Request, session: DbSession) -> dict[str, list[dict[str, str]]]:
    """The public key (JWKS) that verifies this workspace's consent receipts. Public by design."""
    return {"keys": [service.public_jwk(_keyring(request, session, workspace_id))]}
