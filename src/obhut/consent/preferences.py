"""The preference centre: a customer without a staff account sees every purpose of the workspace, the notice
for it and their current state, and changes that state, through a signed link that expires.

A link is a compact JWS (alg Ed25519) signed with the workspace's own preference-link key from the vault, a
key of its own so that a consent receipt can never pass for a link. It names one workspace and one customer;
a link for an erased customer answers like a link for nobody."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from obhut.consent import rules, service
from obhut.consent.models import ConsentNotice, ConsentPurpose
from obhut.consent.rules import Channel, Kind
from obhut.kit.clock import now
from obhut.kit.errors import AuthenticationError, NotFoundError
from obhut.kit.ids import new_id
from obhut.vault.errors import SubjectShreddedError, WorkspaceKeysMissingError
from obhut.vault.keyring import Keyring
from obhut.vault.service import Vault

LINK_KEY = "preference-links"  # the vault key's use: distinct from the receipts' key
LINK_TYPE = "preference-link+jwt"
DEFAULT_MINUTES = 7 * 24 * 60
MAX_MINUTES = 30 * 24 * 60
LANGUAGES = ("de", "en")  # the first is the default
CUSTOMER = "customer"  # the actor of what a customer does through their link
_CLAIMS = {"ws": str, "sub": str, "iat": int, "exp": int, "jti": str}
_COMPACT = re.compile(r"[A-Za-z0-9_-]{2,1000}\.[A-Za-z0-9_-]{2,1000}\.[A-Za-z0-9_-]{2,200}")
_MALFORMED = "this is not a preference link (malformed or cut short); open the whole link from the message again"


class PreferenceLinkError(AuthenticationError):
    kind = "preference-link"
    title = "Preference link not valid"


@dataclass(frozen=True)
class Link:
    token: str
    workspace_id: str
    customer_id: str
    link_id: str  # the token's jti: names the link in the access log without the token itself
    expires_at: datetime

    def __repr__(self) -> str:
        return f"Link({self.workspace_id!r}, {self.link_id!r})"  # the token is a credential


@dataclass(frozen=True)
class Shown:
    """A notice as the customer is shown it: the newest version, in their language where it exists."""

    version: str
    language: str
    text: str


@dataclass(frozen=True)
class Choice:
    """What a customer decided in the preference centre."""

    purpose: str
    kind: Kind
    language: str
    notice_version: str | None = None


@dataclass(frozen=True)
class PurposeView:
    purpose: ConsentPurpose
    notice: Shown | None
    decision: rules.Decision


# --- links -----------------------------------------------------------------------------------------------
def issue(keyring: Keyring, customer_id: str, minutes: int = DEFAULT_MINUTES) -> Link:
    """A link for the customer that expires after `minutes`; refused (404) for an unknown or erased customer."""
    _ensure_customer(keyring, customer_id)
    issued = now()
    claims = {
        "ws": keyring.workspace_id,
        "sub": customer_id,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(minutes=minutes)).timestamp()),
        "jti": new_id(),
    }
    return _link(sign(keyring, claims), claims)


def sign(keyring: Keyring, claims: dict[str, Any]) -> str:
    """The compact JWS of `claims` under the workspace's preference-link key."""
    return service.compact_jws(keyring, LINK_KEY, LINK_TYPE, claims)


def open_link(vault: Vault, session: Session, token: str) -> tuple[Keyring, Link]:
    """The workspace's keyring and the link, once its signature, workspace, expiry and customer check out.
    An unknown workspace answers like a link it did not sign: a link does not tell which workspaces exist."""
    claims = _claims(token)
    try:
        keyring = vault.open(session, claims["ws"])
    except WorkspaceKeysMissingError:
        raise PreferenceLinkError(_not_issued(claims["ws"])) from None
    return keyring, verify(keyring, token)


def verify(keyring: Keyring, token: str) -> Link:
    claims = _claims(token)
    signing_input, _, signature = token.rpartition(".")
    if claims["ws"] != keyring.workspace_id or not keyring.signer(LINK_KEY).verify(
        signing_input.encode(), _b64decode(signature)
    ):
        raise PreferenceLinkError(_not_issued(keyring.workspace_id))
    link = _link(token, claims)
    if link.expires_at <= now():
        raise PreferenceLinkError(
            f"this preference link expired on {link.expires_at:%Y-%m-%d %H:%M} UTC; ask for a new one"
        )
    _ensure_customer(keyring, link.customer_id)
    return link


def _not_issued(workspace_id: str) -> str:
    return f"this preference link does not verify: it was altered, or workspace '{workspace_id}' did not issue it"


def _claims(token: str) -> dict[str, Any]:
    """The claims of a well-formed link, not yet verified."""
    if not _COMPACT.fullmatch(token):
        raise PreferenceLinkError(_MALFORMED)
    encoded_header, encoded_claims, _ = token.split(".")
    try:
        header, claims = json.loads(_b64decode(encoded_header)), json.loads(_b64decode(encoded_claims))
    except ValueError:  # not JSON, or not UTF-8
        raise PreferenceLinkError(_MALFORMED) from None
    if not isinstance(header, dict) or header.get("alg") != "Ed25519" or header.get("typ") != LINK_TYPE:
        raise PreferenceLinkError(_MALFORMED)
    if not isinstance(claims, dict) or not all(type(claims.get(n)) is kind for n, kind in _CLAIMS.items()):
        raise PreferenceLinkError(_MALFORMED)
    return claims


def _link(token: str, claims: dict[str, Any]) -> Link:
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    return Link(token, claims["ws"], claims["sub"], claims["jti"], expires)


def _ensure_customer(keyring: Keyring, customer_id: str) -> None:
    """A customer never created and one erased answer alike: their data key is not there."""
    try:
        keyring.subject(customer_id)
    except SubjectShreddedError:
        raise NotFoundError(f"no customer {customer_id} in workspace '{keyring.workspace_id}'") from None


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise PreferenceLinkError(_MALFORMED) from None


# --- the centre ------------------------------------------------------------------------------------------
def language_of(asked: str | None, accept_language: str) -> str:
    """`asked` (?lang=) if it is one of ours, else the first of ours the Accept-Language header names, else German."""
    if asked in LANGUAGES:
        return asked
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return LANGUAGES[0]


def centre(session: Session, workspace_id: str, customer_id: str, language: str) -> list[PurposeView]:
    """Every purpose of the workspace with its notice and whether the customer's data may be used for it now."""
    purposes = session.scalars(
        select(ConsentPurpose).where(ConsentPurpose.workspace_id == workspace_id).order_by(ConsentPurpose.key)
    ).all()
    notices = newest_notices(session, workspace_id, language)
    return [
        PurposeView(p, notices.get(p.key), service.check(session, workspace_id, customer_id, p.key)) for p in purposes
    ]


def newest_notices(
    session: Session, workspace_id: str, language: str, purpose_key: str | None = None
) -> dict[str, Shown]:
    """Per purpose, its newest notice version in `language`, or in the other language where that version
    has no text in `language`. Texts are read only for the versions chosen."""
    query = select(ConsentNotice.purpose_key, ConsentNotice.version, ConsentNotice.language).where(
        ConsentNotice.workspace_id == workspace_id
    )
    if purpose_key is not None:
        query = query.where(ConsentNotice.purpose_key == purpose_key)
    best: dict[str, tuple[tuple[int, int], bool, str, str]] = {}
    for key, version, notice_language in session.execute(query):
        rank = (rules.parse_version(version), notice_language == language, version, notice_language)
        if key not in best or rank[:2] > best[key][:2]:
            best[key] = rank
    shown = {}
    for key, (_, _, version, notice_language) in best.items():
        text = service.notice(session, workspace_id, key, version, notice_language).text
        shown[key] = Shown(version, notice_language, text)
    return shown


def change_for(session: Session, link: Link, choice: Choice, source: tuple[str, str]) -> service.Change:
    """The ledger event for a customer's choice. A grant without a version is for the notice the centre
    shows: the newest, in the language it is shown in."""
    version, language = choice.notice_version, choice.language
    if choice.kind is Kind.GRANTED and version is None:
        shown = newest_notices(session, link.workspace_id, language, choice.purpose).get(choice.purpose)
        if shown is not None:
            version, language = shown.version, shown.language
    return service.Change(choice.purpose, choice.kind, Channel.WEB, CUSTOMER, language, version, None, source)
