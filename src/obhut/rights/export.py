"""One export per customer across every domain (GDPR Art. 15 and 20): a ZIP with the machine-readable JSON
(`data.json`, described by `schema.json`) and a report a person can read (`report.html`) in the customer's
language. Built in memory: a customer's data is small, and nothing of it touches the disk."""

from __future__ import annotations

import io
import json
import zipfile
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from obhut.kit.clock import now
from obhut.rights.ports import Subject
from obhut.rights.registry import Registry

SCHEMA = "https://obhut.invalid/schemas/subject-export/1.json"

_WORDS: dict[str, dict[str, Any]] = {
    "en": {
        "title": "Your data", "intro": "Everything we hold about you, as of", "profile": "Your profile",
        "field": "Field", "value": "Value", "category": "Kind of data", "consents": "Your consents",
        "chain_ok": "The record of your consents is intact (its hash chain verifies).",
        "chain_broken": "The record of your consents does not verify; we are looking into it.",
        "purpose": "Purpose", "event": "Event", "when": "When", "until": "Until", "notice": "Notice version",
        "channel": "Channel", "looked": "Who looked at your data", "who": "Who", "what": "What", "data": "Data",
        "why": "Why", "shown": "Shown", "recipients": "Who receives your data", "recipient": "Recipient",
        "notices": "Notices about you", "requests": "Your requests", "right": "Right", "received": "Received",
        "status": "Status", "outcome": "Outcome",
        "machine": "data.json holds the same in machine-readable form (described by schema.json), for you to "
                   "take to another provider.",
        "fields": {"given_name": "Given name", "family_name": "Family name", "birth_date": "Date of birth",
                   "email": "Email", "phone": "Phone", "postal_address": "Postal address", "iban": "IBAN",
                   "card": "Payment card", "notes": "Notes", "external_ref": "Customer number"},
        "categories": {"identity": "identity", "contact": "contact", "financial": "financial", "notes": "notes"},
        "rights": {"access": "access", "portability": "portability", "rectification": "rectification",
                   "erasure": "erasure", "restriction": "restriction", "objection": "objection"},
    },
    "de": {
        "title": "Ihre Daten", "intro": "Alles, was wir über Sie gespeichert haben, Stand", "profile": "Ihr Profil",
        "field": "Feld", "value": "Wert", "category": "Art der Daten", "consents": "Ihre Einwilligungen",
        "chain_ok": "Das Protokoll Ihrer Einwilligungen ist unverändert (seine Hash-Kette ist gültig).",
        "chain_broken": "Das Protokoll Ihrer Einwilligungen ist nicht gültig; wir gehen dem nach.",
        "purpose": "Zweck", "event": "Ereignis", "when": "Wann", "until": "Bis", "notice": "Fassung des Hinweises",
        "channel": "Weg", "looked": "Wer Ihre Daten angesehen hat", "who": "Wer", "what": "Was", "data": "Daten",
        "why": "Wozu", "shown": "Angezeigt", "recipients": "Wer Ihre Daten erhält", "recipient": "Empfänger",
        "notices": "Mitteilungen über Sie", "requests": "Ihre Anträge", "right": "Recht", "received": "Eingegangen",
        "status": "Stand", "outcome": "Ergebnis",
        "machine": "data.json enthält dasselbe maschinenlesbar (beschrieben in schema.json), damit Sie es zu "
                   "einem anderen Anbieter mitnehmen können.",
        "fields": {"given_name": "Vorname", "family_name": "Nachname", "birth_date": "Geburtsdatum",
                   "email": "E-Mail", "phone": "Telefon", "postal_address": "Anschrift", "iban": "IBAN",
                   "card": "Zahlungskarte", "notes": "Notizen", "external_ref": "Kundennummer"},
        "categories": {"identity": "Identität", "contact": "Kontakt", "financial": "Finanzen", "notes": "Notizen"},
        "rights": {"access": "Auskunft", "portability": "Datenübertragbarkeit", "rectification": "Berichtigung",
                   "erasure": "Löschung", "restriction": "Einschränkung", "objection": "Widerspruch"},
    },
}  # fmt: skip


def _show(value: object) -> str:
    """A field's value as a person reads it: an address or a card on one line."""
    if isinstance(value, dict):
        return ", ".join(str(v) for v in value.values() if v)
    return str(value)


_TEMPLATES = Environment(loader=PackageLoader("obhut.rights"), autoescape=select_autoescape(["html"]))
_TEMPLATES.filters["show"] = _show


def collect(registry: Registry, subject: Subject) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "generated_at": now().isoformat(),
        "workspace": subject.workspace_id,
        "customer_id": subject.customer_id,
        "language": subject.language,
        "domains": {handler.domain: handler.export(subject) for handler in registry},
    }


def report_html(data: dict[str, Any]) -> str:
    domains, language = data["domains"], data["language"]
    return _TEMPLATES.get_template("report.html").render(
        t=_WORDS[language],
        language=language,
        generated_at=data["generated_at"],
        profile=domains["customers"],
        consent=domains["consent"],
        looked=domains["audit"]["who_looked_at_my_data"],
        recipients=domains["outbox"]["recipients"],
        requests=domains["rights"]["requests"],
    )


def archive(registry: Registry, subject: Subject) -> bytes:
    """The ZIP the verified requester downloads."""
    data = collect(registry, subject)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("data.json", json.dumps(data, ensure_ascii=False, indent=2, default=str))
        bundle.writestr("report.html", report_html(data))
        bundle.writestr("schema.json", resources.files("obhut.rights").joinpath("export-schema.json").read_text())
    return buffer.getvalue()
