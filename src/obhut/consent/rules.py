"""What a customer agreed to, derived from the consent ledger. Pure: no database, web or keys.

The ledger is append-only: a withdrawal adds an event, it never removes one. The state of one purpose for
one customer is the last event's, read at the moment of use, so that a time-limited consent lapses exactly
when it ends and a new major version of the notice makes earlier consents lapse until given again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class LegalBasis(StrEnum):
    """GDPR Art. 6(1) (a) to (f)."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTEREST = "vital_interest"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTEREST = "legitimate_interest"


class Kind(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    OBJECTED = "objected"  # Art. 21, also Global Privacy Control for sale and sharing


class Channel(StrEnum):
    WEB = "web"
    APP = "app"
    PHONE = "phone"
    IMPORT = "import"
    API = "api"


class Restriction(StrEnum):
    """A standing limit on all of a customer's data, kept as their state for the purpose `RESTRICTION`."""

    RESTRICTED = "restricted"  # Art. 18: storage, and uses the law requires, only
    ERASED = "erased"  # what is left is kept only because the law requires it


RESTRICTION = "*"  # the state row that holds a customer's restriction, beside their purposes
GENESIS = "0" * 64
UNKNOWN_PURPOSE = "unknown purpose"  # not in the catalogue: no consent can allow it
_STANDING_NO = frozenset({Kind.OBJECTED, Kind.WITHDRAWN, Kind.DENIED})  # the `prev` of a customer's first event


@dataclass(frozen=True, slots=True)
class Latest:
    """The newest ledger event of one customer for one purpose, as far as a decision needs it."""

    kind: Kind
    until: datetime | None  # a time-limited consent ends here
    notice_major: int | None  # the major version of the notice the customer saw


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str  # granted, no consent, denied, withdrawn, expired, objected, notice changed, basis


def decide(
    basis: LegalBasis, latest: Latest | None, current_major: int | None, at: datetime, restriction: str | None = None
) -> Decision:
    """Fails closed: for consent, only a granted consent that has not ended and was given to the current
    major version of the notice allows the use. Legitimate interest allows it unless the customer objected.
    The other bases need no consent. A restricted or erased customer's data serves legal obligations only."""
    if restriction is not None and basis is not LegalBasis.LEGAL_OBLIGATION:
        return _DECISIONS[restriction]
    if basis is LegalBasis.CONSENT:
        return _DECISIONS[_refusal(latest, current_major, at)]
    if basis is LegalBasis.LEGITIMATE_INTEREST and latest is not None and latest.kind in _STANDING_NO:
        # an objection (or a refusal or withdrawal recorded for it) stands until the customer agrees again
        return _OBJECTED
    return _DECISIONS[basis.value]


def _refusal(latest: Latest | None, current_major: int | None, at: datetime) -> str:
    if latest is None:
        return "no consent"
    if latest.kind is not Kind.GRANTED:
        return latest.kind.value
    if latest.until is not None and latest.until <= at:
        return "expired"
    if current_major is not None and latest.notice_major != current_major:
        return "notice changed"
    return "granted"


# Every decision there is, made once: a check returns one of these instead of building a new one each time.
_REFUSALS = (
    "no consent", *(k.value for k in Kind if k is not Kind.GRANTED), "expired", "notice changed",
    *(r.value for r in Restriction),
)  # fmt: skip
_DECISIONS = {
    "granted": Decision(allowed=True, reason="granted"),
    **{reason: Decision(allowed=False, reason=reason) for reason in _REFUSALS},
    **{b.value: Decision(allowed=True, reason=b.value) for b in LegalBasis if b is not LegalBasis.CONSENT},
}
_OBJECTED = Decision(allowed=False, reason="objected")


def event_hash(prev: str, event: Mapping[str, Any]) -> str:
    """Chains an event to the customer's previous one: SHA-256 over the previous hash and the event's
    canonical JSON, so a changed, removed or reordered event breaks every hash after it."""
    body = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


def notice_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def parse_version(version: str) -> tuple[int, int]:
    """'2.1' -> (2, 1). A notice version is MAJOR.MINOR; a new major makes earlier consents lapse."""
    major, _, minor = version.partition(".")
    if not (major.isdigit() and (minor == "" or minor.isdigit())):
        raise ValueError("a notice version is MAJOR.MINOR, e.g. 2.1")
    return int(major), int(minor or 0)
