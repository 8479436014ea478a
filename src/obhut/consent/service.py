"""The consent ledger: purposes and notices, appending events (chained per customer), the check at the
moment of use (`require`, failing closed), expiry, and signed receipts (JWS, Ed25519, from the vault)."""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, literal, select
from sqlalchemy.orm import Session, aliased

from obhut.consent import cache, rules
from obhut.consent.models import ConsentChain, ConsentEvent, ConsentNotice, ConsentPurpose, ConsentState
from obhut.consent.rules import Channel, Decision, Kind, LegalBasis
from obhut.kit import bulk
from obhut.kit.clock import now
from obhut.kit.errors import FieldErrors, ForbiddenError, NotFoundError
from obhut.kit.ids import new_id
from obhut.outbox import service as outbox
from obhut.vault.errors import SubjectShreddedError
from obhut.vault.keyring import Keyring

RECEIPT_KEY = "consent-receipts"
HOW_TO_WITHDRAW = "Withdraw at any time, as easily as you agreed: in the preference centre or by asking us."


class ConsentRequiredError(ForbiddenError):
    kind = "consent-required"
    title = "No consent for this purpose"


@dataclass(frozen=True)
class Change:
    """One ledger event to append. `source` (address, user agent) is sealed under the customer's key."""

    purpose: str
    kind: Kind
    channel: Channel
    actor: str
    language: str = "de"
    notice_version: str | None = None
    until: datetime | None = None
    source: tuple[str, str] | None = None

    def __repr__(self) -> str:
        return f"Change({self.purpose!r}, {self.kind.value!r})"


def purpose(session: Session, workspace_id: str, key: str) -> ConsentPurpose:
    found = session.get(ConsentPurpose, (workspace_id, key))
    if found is None:
        raise NotFoundError(f"no purpose '{key}' in the consent catalogue of workspace '{workspace_id}'")
    cache.pin(session, found)
    return found


def notice(session: Session, workspace_id: str, purpose_key: str, version: str, language: str) -> ConsentNotice:
    found = session.get(ConsentNotice, (workspace_id, purpose_key, version, language))
    if found is None:
        raise NotFoundError(f"no notice {version} ({language}) for purpose '{purpose_key}'")
    cache.pin(session, found)
    return found


def append(session: Session, keyring: Keyring, workspace_id: str, customer_id: str, change: Change) -> ConsentEvent:
    """Appends one event to the customer's chain and updates the derived state, in the caller's transaction."""
    about = purpose(session, workspace_id, change.purpose)
    seen = None
    if change.notice_version is not None:
        seen = notice(session, workspace_id, change.purpose, change.notice_version, change.language)
    elif change.kind is Kind.GRANTED and about.legal_basis == LegalBasis.CONSENT:
        errors = FieldErrors()
        errors.add("notice_version", "a consent must name the notice version the customer was shown")
        errors.raise_if_any()
    try:
        cipher = keyring.subject(customer_id)
    except SubjectShreddedError:
        raise NotFoundError(f"no customer {customer_id} in workspace '{workspace_id}'") from None
    chain = session.get(ConsentChain, (workspace_id, customer_id), with_for_update=True)
    if chain is None:
        chain = ConsentChain(workspace_id=workspace_id, customer_id=customer_id, length=0, head=rules.GENESIS)
        session.add(chain)
    source = None
    if change.source is not None:
        source = cipher.seal("consent-source", json.dumps(change.source).encode())
    event = ConsentEvent(
        workspace_id=workspace_id,
        event_id=new_id(),
        customer_id=customer_id,
        position=chain.length,
        purpose_key=change.purpose,
        kind=change.kind.value,
        at=now(),
        until=change.until,
        channel=change.channel.value,
        notice_version=seen.version if seen else None,
        notice_hash=seen.text_hash if seen else None,
        language=change.language,
        actor=change.actor,
        source_sealed=source,
        prev_hash=chain.head,
    )
    event.hash = rules.event_hash(chain.head, chained(event))
    chain.head, chain.length = event.hash, chain.length + 1
    session.add(event)
    state = session.get(ConsentState, (workspace_id, customer_id, change.purpose))
    if state is None:
        state = ConsentState(workspace_id=workspace_id, customer_id=customer_id, purpose_key=change.purpose)
        session.add(state)
    state.kind, state.until, state.event_id = event.kind, event.until, event.event_id
    state.notice_major = seen.major if seen else None
    session.flush()
    cache.changed(session, workspace_id, customer_id)
    outbox.emit(
        session,
        workspace_id,
        f"consent.{event.kind}",
        customer_id=customer_id,
        purpose=event.purpose_key,
        data={
            "kind": event.kind,
            "until": event.until.isoformat() if event.until else None,
            "channel": event.channel,
            "notice_version": event.notice_version,
            "ledger_hash": event.hash,
        },
        event_id=event.event_id,
    )
    return event


def chained(event: ConsentEvent) -> dict[str, Any]:
    """The fields an event's hash covers."""
    fields = ("event_id", "customer_id", "position", "purpose_key", "kind", "at", "until", "channel")
    more = ("notice_version", "notice_hash", "language", "actor")
    values = {name: getattr(event, name) for name in (*fields, *more)}
    for name in ("at", "until"):  # one form for a time, however it was given or read back
        if values[name] is not None:
            values[name] = values[name].astimezone(UTC).isoformat(timespec="microseconds")
    values["source_sealed"] = base64.b64encode(event.source_sealed).decode() if event.source_sealed else None
    return values


_MAJOR = (
    select(func.max(ConsentNotice.major))
    .where(ConsentNotice.workspace_id == ConsentPurpose.workspace_id, ConsentNotice.purpose_key == ConsentPurpose.key)
    .correlate(ConsentPurpose)
    .scalar_subquery()
)
_HELD = aliased(ConsentState)  # the customer's restriction, if any
_ONE_ROW = select(literal(1).label("one")).subquery("one")  # so a purpose outside the catalogue still answers
_CHECK = (
    select(
        ConsentPurpose.legal_basis,
        ConsentState.kind,
        ConsentState.until,
        ConsentState.notice_major,
        _MAJOR,
        _HELD.kind,
    )
    .select_from(_ONE_ROW)
    .outerjoin(
        ConsentPurpose,
        (ConsentPurpose.workspace_id == bindparam("workspace")) & (ConsentPurpose.key == bindparam("purpose")),
    )
    .outerjoin(
        ConsentState,
        (ConsentState.workspace_id == ConsentPurpose.workspace_id)
        & (ConsentState.purpose_key == ConsentPurpose.key)
        & (ConsentState.customer_id == bindparam("customer")),
    )
    .outerjoin(
        _HELD,
        (_HELD.workspace_id == bindparam("workspace"))
        & (_HELD.purpose_key == rules.RESTRICTION)
        & (_HELD.customer_id == bindparam("customer")),
    )
)


def check(session: Session, workspace_id: str, customer_id: str, purpose_key: str) -> Decision:
    """The decision at this moment, from one query (purpose, the customer's state and restriction, the newest
    notice major): read on every call, so nothing can be stale. Unknown purposes and customers without a
    record get no; a purpose outside the catalogue answers `unknown purpose`, or the customer's restriction."""
    row = (
        session.connection()
        .execute(_CHECK, {"workspace": workspace_id, "purpose": purpose_key, "customer": customer_id})
        .one()
    )
    basis, kind, until, seen_major, major, restriction = row
    if basis is None:
        return Decision(allowed=False, reason=restriction or rules.UNKNOWN_PURPOSE)
    latest = None if kind is None else rules.Latest(Kind(kind), until, seen_major)
    return rules.decide(LegalBasis(basis), latest, major if basis == LegalBasis.CONSENT else None, now(), restriction)


def allowed_pairs(session: Session, workspace_id: str, pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
    """`check` for many (customer, purpose) pairs at once, in a few queries: those allowed now."""
    keys = sorted({purpose_key for _, purpose_key in pairs})
    about = cache.terms(session, workspace_id, keys)
    latest: dict[tuple[str, str], rules.Latest] = {}
    held: dict[str, str] = {}
    customers = sorted({customer_id for customer_id, _ in pairs})
    for chunk in bulk.chunks(customers):
        query = select(
            ConsentState.customer_id, ConsentState.purpose_key, ConsentState.kind, ConsentState.until,
            ConsentState.notice_major,
        ).where(
            ConsentState.workspace_id == workspace_id,
            ConsentState.customer_id.in_(chunk),
            ConsentState.purpose_key.in_([*keys, rules.RESTRICTION]),
        )  # fmt: skip
        for customer_id, key, kind, until, seen in session.execute(query):
            if key == rules.RESTRICTION:
                held[customer_id] = kind
            else:
                latest[customer_id, key] = rules.Latest(Kind(kind), until, seen)
    at = now()
    allowed = set()
    for customer_id, key in pairs:
        if key in about:
            basis, major = about[key]
            if rules.decide(basis, latest.get((customer_id, key)), major, at, held.get(customer_id)).allowed:
                allowed.add((customer_id, key))
    return allowed


def require(
    session: Session, workspace_id: str, customer_id: str, purpose_key: str, *, uncatalogued_ok: bool = False
) -> None:
    """Refuses (403 consent-required) unless the customer's data may be used for the purpose now.
    `uncatalogued_ok`: a purpose outside the consent catalogue is not consent's to refuse."""
    decision = check(session, workspace_id, customer_id, purpose_key)
    if not decision.allowed and not (uncatalogued_ok and decision.reason == rules.UNKNOWN_PURPOSE):
        raise ConsentRequiredError(f"the customer's data may not be used for '{purpose_key}': {decision.reason}")


def enforce(session: Session, workspace_id: str, customer_id: str, purpose_key: str | None) -> None:
    """For reads by staff: a purpose in the consent catalogue must be allowed for this customer now; the
    staff purposes that are not in it (support, billing, ...) are governed by the access policy alone."""
    if purpose_key is not None:
        require(session, workspace_id, customer_id, purpose_key, uncatalogued_ok=True)


def ledger(session: Session, workspace_id: str, customer_id: str) -> list[ConsentEvent]:
    query = select(ConsentEvent).where(
        ConsentEvent.workspace_id == workspace_id, ConsentEvent.customer_id == customer_id
    )
    return list(session.scalars(query.order_by(ConsentEvent.position)))


def first_broken(events: Sequence[ConsentEvent], chain: ConsentChain | None) -> int | None:
    """The position of the first event that does not chain to the one before (changed, removed, reordered),
    or where the ledger stops short of the customer's chain head (newest events removed)."""
    head = rules.GENESIS
    for position, event in enumerate(events):
        if (
            event.position != position
            or event.prev_hash != head
            or rules.event_hash(head, chained(event)) != event.hash
        ):
            return position
        head = event.hash
    if chain is not None and (chain.length != len(events) or chain.head != head):
        return min(len(events), chain.length)
    return None


def expire_due(session: Session, keyring: Keyring, workspace_id: str) -> int:
    """Records `expired` for every granted, time-limited consent that has ended (the read-time check has
    refused them already; this makes the ledger say so)."""
    due = session.scalars(
        select(ConsentState).where(
            ConsentState.workspace_id == workspace_id,
            ConsentState.kind == Kind.GRANTED.value,
            ConsentState.until.is_not(None),
            ConsentState.until <= now(),
        )
    ).all()
    recorded = 0
    for state in due:
        change = Change(state.purpose_key, Kind.EXPIRED, Channel.API, "system")
        try:
            append(session, keyring, workspace_id, state.customer_id, change)
        except NotFoundError:  # an erased customer: nothing to use any more, and their key is gone
            session.delete(state)
            cache.changed(session, workspace_id, state.customer_id)
            continue
        recorded += 1
    return recorded


# --- receipts --------------------------------------------------------------------------------------------
def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(keyring: Keyring, key_name: str = RECEIPT_KEY) -> dict[str, str]:
    signer = keyring.signer(key_name)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(signer.public_key), "use": "sig", "alg": "Ed25519",
            "kid": b64url(signer.public_key[:8])}  # fmt: skip


def receipt(session: Session, keyring: Keyring, workspace_id: str, event: ConsentEvent) -> str:
    """A consent receipt shaped after ISO/IEC TS 27560 and the Kantara consent receipt, as a compact JWS
    (alg Ed25519, RFC 9864) signed with the workspace's receipt key: anyone with the public key (the JWKS)
    can verify it. The signature comes from the vault; only the JWS framing is assembled here."""
    about = purpose(session, workspace_id, event.purpose_key)
    history = [
        {"event": e.kind, "at": e.at.isoformat(), "until": e.until.isoformat() if e.until else None,
         "notice": e.notice_version, "notice_hash": e.notice_hash, "channel": e.channel}
        for e in ledger(session, workspace_id, event.customer_id)
        if e.purpose_key == event.purpose_key
    ]  # fmt: skip
    claims = {
        "version": "ISO/IEC TS 27560:2023",
        "receipt_id": event.event_id,
        "iat": int(event.at.timestamp()),
        "jurisdiction": "EU",
        "controller": {"workspace": workspace_id},
        "subject": event.customer_id,
        "purpose": {
            "key": about.key,
            "title": about.title_de if event.language == "de" else about.title_en,
            "legal_basis": about.legal_basis,
            "data_categories": about.categories.split(),
            "recipients": about.recipients,
            "retention": about.retention,
        },
        "state": event.kind,
        "notice": {"version": event.notice_version, "sha256": event.notice_hash, "language": event.language},
        "duration": {"until": event.until.isoformat() if event.until else None},
        "events": history,
        "how_to_withdraw": HOW_TO_WITHDRAW,
        "ledger_hash": event.hash,
    }
    return compact_jws(keyring, RECEIPT_KEY, "consent-receipt+jwt", claims)


def compact_jws(keyring: Keyring, key_name: str, typ: str, claims: dict[str, Any]) -> str:
    """`claims` as a compact JWS (alg Ed25519) under the workspace's key for `key_name`: the signature comes
    from the vault; only the framing is assembled here."""
    signer = keyring.signer(key_name)
    header = {"alg": "Ed25519", "typ": typ, "kid": b64url(signer.public_key[:8])}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(signer.sign(signing_input.encode()))}"
