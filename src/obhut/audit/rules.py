"""What an access-log entry says and how it is hashed. Pure: no database, web or keys.

An entry's body is the canonical JSON (a compact array in a fixed column order) of its content columns,
fixed when it is recorded; its leaf is the body after its position (8 bytes), so changing, reordering or renumbering
entries changes the leaves and so the tree. The columns beside the body are what queries filter on; a deep
verification checks that they still say what the body says."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from obhut.audit import merkle

ORIGIN_PREFIX = "obhut.example.com/access-log/"  # checkpoint origin: a schema-less URL naming the log
SIGNER = "checkpoint"  # the workspace key's use

# The columns the body holds, in the stored form.
CONTENT_COLUMNS = (
    "entry_id",
    "at",
    "actor",
    "role",
    "action",
    "outcome",
    "subject",
    "target",
    "categories",
    "requested",
    "returned",
    "purpose",
    "ticket",
    "search_kind",
    "search_hash",
    "count",
    "address",
    "user_agent",
    "request_id",
    "sealed",
)
_AT, _SEALED = CONTENT_COLUMNS.index("at"), CONTENT_COLUMNS.index("sealed")
OUTCOMES = ("revealed", "masked", "denied", "ok", "failed")


def origin(workspace_id: str) -> str:
    return ORIGIN_PREFIX + workspace_id


def leaves_data(start: int, bodies: Sequence[bytes]) -> list[bytes]:
    """What the leaf hashes of consecutive entries from position `start` cover: each entry's position (8 bytes,
    big-endian), then its body."""
    return [head + body for head, body in zip(leaf_heads(start, len(bodies)), bodies, strict=True)]


def leaf_hashes(start: int, bodies: Sequence[bytes]) -> list[bytes]:
    """The leaf hashes of `leaves_data(start, bodies)`, without joining each position and body first."""
    return merkle.leaf_hashes(bodies, leaf_heads(start, len(bodies)))


def leaf_heads(start: int, count: int) -> Iterator[bytes]:
    """What each leaf's data starts with: its position, 8 bytes big-endian."""
    return map(_POSITION.pack, range(start, start + count))


_POSITION = struct.Struct(">Q")


def body_bytes(values: Mapping[str, Any], at_text: str | None = None) -> bytes:
    """The canonical form of an entry's content: a compact JSON array of CONTENT_COLUMNS in that order
    (the sealed customer id as base64, the time as ISO 8601 with microseconds: `at_text`, where a batch
    of entries formatted their shared time once)."""
    document = [values[column] for column in CONTENT_COLUMNS]
    document[_AT] = at_text or time_text(document[_AT])
    sealed = document[_SEALED]
    if sealed is not None:
        document[_SEALED] = base64.b64encode(sealed).decode()
    return _encode(document).encode()


def time_text(at: datetime) -> str:
    return at.isoformat(timespec="microseconds")


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def outcome_of(disclosure: Mapping[str, str]) -> str:
    """revealed if any field was, else masked if any was, else denied."""
    shown = set(disclosure.values())
    if "revealed" in shown:
        return "revealed"
    return "masked" if "masked" in shown else "denied"


def search_kind(field: str) -> str:
    """A search recorded by what it looked for, never by the term: 'email lookup', 'iban lookup'."""
    return f"{field} lookup"


def action(source: str, subject: str, verb: str) -> str:
    return f"{source}:{subject}:{verb}"


LOGIN = action("api", "session", "login")
MFA = action("api", "session", "mfa")


# "Who looked at my data": the entries about one customer in words they can read (DSAR, GDPR Art. 15).
LANGUAGES = ("en", "de")
_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "read": "viewed your data",
        "search": "found you in a search",
        "create": "created your record",
        "update": "changed your data",
        "delete": "erased your data",
        "shred": "erased your data",
        "export": "exported your data",
        "break-glass": "viewed your data in an emergency (beyond the usual rules, with a written reason)",
        "subject-report": "prepared a report like this one for you",
        "revealed": "shown in full",
        "masked": "shown partly hidden",
        "denied": "not shown",
        "ok": "done",
        "failed": "refused",
        "identity": "name and date of birth",
        "contact": "contact details",
        "financial": "bank and card details",
        "notes": "notes",
        "other": "an action on your record",
        "consent:granted": "recorded your consent",
        "consent:denied": "recorded that you declined",
        "consent:withdrawn": "recorded your withdrawal of consent",
        "consent:expired": "recorded that your consent ended",
        "consent:objected": "recorded your objection",
        "consent:read": "looked at your consent choices",
        "consent:ledger-read": "looked at the history of your consent choices",
        "consent:link-issue": "sent you a link to your privacy settings",
    },
    "de": {
        "read": "hat Ihre Daten angesehen",
        "search": "hat Sie über eine Suche gefunden",
        "create": "hat Ihren Datensatz angelegt",
        "update": "hat Ihre Daten geändert",
        "delete": "hat Ihre Daten gelöscht",
        "shred": "hat Ihre Daten gelöscht",
        "export": "hat Ihre Daten exportiert",
        "break-glass": "hat Ihre Daten im Notfall angesehen (über die üblichen Regeln hinaus, begründet)",
        "subject-report": "hat eine Auskunft wie diese für Sie erstellt",
        "revealed": "vollständig angezeigt",
        "masked": "teilweise verdeckt angezeigt",
        "denied": "nicht angezeigt",
        "ok": "ausgeführt",
        "failed": "abgelehnt",
        "identity": "Name und Geburtsdatum",
        "contact": "Kontaktdaten",
        "financial": "Bank- und Kartendaten",
        "notes": "Notizen",
        "other": "eine Aktion an Ihrem Datensatz",
        "consent:granted": "hat Ihre Einwilligung erfasst",
        "consent:denied": "hat Ihre Ablehnung erfasst",
        "consent:withdrawn": "hat Ihren Widerruf erfasst",
        "consent:expired": "hat das Ende Ihrer Einwilligung erfasst",
        "consent:objected": "hat Ihren Widerspruch erfasst",
        "consent:read": "hat Ihre Einwilligungen angesehen",
        "consent:ledger-read": "hat den Verlauf Ihrer Einwilligungen angesehen",
        "consent:link-issue": "hat Ihnen einen Link zu Ihren Datenschutz-Einstellungen geschickt",
    },
}


def words(language: str, key: str) -> str:
    table = _WORDS.get(language, _WORDS["en"])
    return table.get(key, table["other"])


def verb_of(action_name: str) -> str:
    return action_name.rsplit(":", 1)[-1]


def describe(language: str, action_name: str) -> str:
    """An action in the customer's words: its subject and verb where they have their own words (a consent
    that was denied is not data that was denied), else its verb."""
    table = _WORDS.get(language, _WORDS["en"])
    subject_verb = ":".join(action_name.split(":")[-2:])
    return table.get(subject_verb) or words(language, verb_of(action_name))


def language_of(accept_language: str) -> str:
    """The first of our languages the header names (`de-DE,de;q=0.9,en;q=0.8` -> de); English otherwise."""
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return "en"
