"""Masks per kind of value, keeping only what a task needs. Pure: they see a decrypted value only when
the policy allowed at least a mask, and they return new values, never the input."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import phonenumbers

from obhut.access.rules import MaskStyle

REDACTED = "[redacted]"
_STAR = "*"


def _initials(text: str) -> str:
    return " ".join(part[0] + "." for part in text.split() if part)


def _email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    return f"{local[:1]}***@{domain}"


def _phone(value: str) -> str:
    try:
        code = phonenumbers.parse(value).country_code
    except phonenumbers.NumberParseException:
        return REDACTED
    return f"+{code} *** ****{value[-3:]}"


def _iban(value: str) -> str:
    compact = value.replace(" ", "")
    hidden = compact[:2] + _STAR * (len(compact) - 6) + compact[-4:]
    return " ".join(hidden[i : i + 4] for i in range(0, len(hidden), 4))


def _birth_date(value: str) -> str:
    return value[:4]  # the year only


def _reference(value: str) -> str:
    return "***" + value[-3:] if len(value) > 6 else "***"  # noqa: PLR2004 - show at most half of a short reference


def _address(value: dict[str, Any]) -> dict[str, Any]:
    postal = str(value.get("postal_code") or "")
    return {
        "line1": "***",
        "line2": None,
        "postal_code": postal[:2] + _STAR * max(len(postal) - 2, 0),
        "city": "***",
        "country": value.get("country"),
    }


def _card(value: dict[str, Any]) -> dict[str, Any]:
    return {"token": None, "brand": value.get("brand"), "last4": value.get("last4")}


_PARTIAL: dict[str, Callable[[Any], Any]] = {
    "given_name": _initials,
    "family_name": _initials,
    "birth_date": _birth_date,
    "email": _email,
    "phone": _phone,
    "iban": _iban,
    "external_ref": _reference,
    "postal_address": _address,
    "card": _card,
}


class Masker:
    """Applies a mask style to a field's value; `hash` is keyed per workspace, so it cannot be reversed
    by hashing guesses without the key."""

    __slots__ = ("_key",)

    def __init__(self, hash_key: bytes) -> None:
        self._key = hash_key

    def __call__(self, field: str, style: MaskStyle, value: Any) -> Any:
        if value is None:
            return None
        if style is MaskStyle.PARTIAL:
            partial = _PARTIAL.get(field)
            return REDACTED if partial is None else partial(value)
        if style is MaskStyle.HASH:
            text = value if isinstance(value, str) else repr(sorted(value.items()))
            return "hash:" + hmac.digest(self._key, f"{field}\x00{text}".encode(), "sha256")[:8].hex()
        return REDACTED
