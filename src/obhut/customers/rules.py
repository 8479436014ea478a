"""What a customer is made of, and how each field is checked and normalised. Pure: no database, no web,
no keys. Error messages name the field and the rule, never the rejected value."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

import email_validator
import phonenumbers
import schwifty
from schwifty import exceptions as iban_errors
from stdnum import luhn

from obhut.kit.errors import FieldErrors


class Category(StrEnum):
    IDENTITY = "identity"
    CONTACT = "contact"
    FINANCIAL = "financial"
    NOTES = "notes"


class Kind(StrEnum):
    TEXT = "text"
    NAME = "name"  # text, searched in a folded form (case, accents and German umlaut spellings alike)
    DATE = "date"
    EMAIL = "email"
    PHONE = "phone"
    ADDRESS = "address"
    IBAN = "iban"
    CARD = "card"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    category: Category
    kind: Kind
    max_length: int = 200
    index: str | None = None  # the blind index that makes this field searchable by exact value


FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec("external_ref", Category.IDENTITY, Kind.TEXT, 100, index="external_ref"),
        FieldSpec("given_name", Category.IDENTITY, Kind.NAME),
        FieldSpec("family_name", Category.IDENTITY, Kind.NAME, index="family_name"),
        FieldSpec("birth_date", Category.IDENTITY, Kind.DATE),
        FieldSpec("email", Category.CONTACT, Kind.EMAIL, 254, index="email"),
        FieldSpec("phone", Category.CONTACT, Kind.PHONE, 40, index="phone"),
        FieldSpec("postal_address", Category.CONTACT, Kind.ADDRESS),
        FieldSpec("iban", Category.FINANCIAL, Kind.IBAN, 42, index="iban"),
        FieldSpec("card", Category.FINANCIAL, Kind.CARD, 30, index="card"),
        FieldSpec("notes", Category.NOTES, Kind.TEXT, 10_000),
    )
}
INDEXED = {spec.index: spec.name for spec in FIELDS.values() if spec.index}
ADDRESS_PARTS = ("line1", "line2", "postal_code", "city", "country")
MAX_AGE_YEARS = 130
MAX_NAME_WORDS = 6
INPUT_NAMES = {"card": "card_number"}  # what the API and import files call a field, where it differs
IDENTIFYING = ("family_name", "email", "external_ref")
IDENTIFYING_MESSAGE = "a customer needs at least a family name, an email or an external reference"

_EMAIL_FAST = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CARD_BRANDS = (  # (prefixes as ranges of the first digits, brand), first match wins
    (((34, 34), (37, 37)), "amex"),
    (((4, 4),), "visa"),
    (((51, 55), (2221, 2720)), "mastercard"),
    (((6011, 6011), (644, 649), (65, 65)), "discover"),
    (((3528, 3589),), "jcb"),
    (((36, 36), (300, 305), (38, 39)), "diners"),
    (((50, 50), (56, 69)), "maestro"),
)


class InvalidValueError(ValueError):
    """A single field's value breaks a rule; the message is safe to show (it holds no value)."""


@dataclass(frozen=True)
class Card:
    """A payment card as entered. Only `brand` and `last4` are ever stored, plus a keyed token."""

    number: str
    brand: str
    last4: str

    def __repr__(self) -> str:
        return f"Card(brand={self.brand!r}, last4=****)"


def clean_text(value: Any, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidValueError("must be text")
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise InvalidValueError("must not be empty")
    if len(text) > max_length:
        raise InvalidValueError(f"must be at most {max_length} characters")
    if _CONTROL.search(text):
        raise InvalidValueError("must not contain control characters")
    return text


def normalise_email(value: Any) -> str:
    text = clean_text(value, FIELDS["email"].max_length)
    if _EMAIL_FAST.fullmatch(text):
        local, _, domain = text.rpartition("@")
        if len(local) <= 64:  # noqa: PLR2004 - RFC 5321 local-part limit
            return f"{local}@{domain.lower()}"
    try:
        checked = email_validator.validate_email(text, check_deliverability=False)
    except email_validator.EmailNotValidError as error:
        raise InvalidValueError("is not a valid email address") from error
    # The ASCII (punycode) form when there is one, as the fast path keeps it: one address, one index value.
    return str(checked.ascii_email or checked.normalized)


def email_index_form(email: str) -> str:
    return email.casefold()


_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})
_NAME_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015]+")  # spaces, hyphens and dashes
_NAME_DROPPED = re.compile(r"['\u2019.]")  # apostrophes and dots: O'Brien = OBrien, "St. Clair" = "St Clair"


def name_index_form(name: str) -> str:
    """A name as searched: case-folded ("ß" as "ss"), "ä ö ü" as "ae oe ue" (so Müller finds Mueller), other
    accents dropped (Séverine = Severine), hyphens as spaces, words single-spaced."""
    folded = unicodedata.normalize("NFC", name).casefold().translate(_UMLAUTS)
    plain = "".join(c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c))
    return " ".join(_NAME_SEPARATORS.sub(" ", _NAME_DROPPED.sub("", plain)).split())


@dataclass(frozen=True)
class NameSearch:
    """One reading of a searched name: its last words the family name, the words before the start of the given
    name ("Anna Beispiel" finds Anna Maria Beispiel; "von Beispiel" is a family name of two words)."""

    given: tuple[str, ...]
    family: str

    def matches(self, given_name: str | None, family_name: str | None) -> bool:
        """Whether a customer's decrypted names fit (the index matched; this rules out a hash collision)."""
        if family_name is None or name_index_form(family_name) != self.family:
            return False
        stored = tuple(name_index_form(given_name or "").split())
        return stored[: len(self.given)] == self.given


def name_searches(term: Any) -> list[NameSearch]:
    """Every reading of a searched name, the whole term as family name first."""
    words = name_index_form(
        clean_text(term, FIELDS["given_name"].max_length + FIELDS["family_name"].max_length)
    ).split()
    if not words:
        raise InvalidValueError("must hold a name")
    if len(words) > MAX_NAME_WORDS:
        raise InvalidValueError(f"must be at most {MAX_NAME_WORDS} words: a family name, or given and family name")
    return [NameSearch(tuple(words[:split]), " ".join(words[split:])) for split in range(len(words))]


def index_form(kind: Kind, value: str) -> str:
    """The form of a value that its blind index hashes: equal forms, equal index values."""
    if kind is Kind.EMAIL:
        return email_index_form(value)
    return name_index_form(value) if kind is Kind.NAME else value


def normalise_phone(value: Any, default_region: str) -> str:
    text = clean_text(value, FIELDS["phone"].max_length)
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as error:
        raise InvalidValueError("is not a phone number; give it as +49 30 1234567 or in national form") from error
    if not phonenumbers.is_valid_number(number):
        raise InvalidValueError("is not a valid phone number for its country")
    return f"+{number.country_code}{phonenumbers.national_significant_number(number)}"


def normalise_iban(value: Any) -> str:
    text = clean_text(value, FIELDS["iban"].max_length)
    try:
        return str(schwifty.IBAN(text).compact)
    except iban_errors.InvalidChecksumDigits as error:
        raise InvalidValueError("is not a valid IBAN: the check digits do not match (a typo?)") from error
    except iban_errors.InvalidLength as error:
        raise InvalidValueError("is not a valid IBAN: wrong length for its country") from error
    except iban_errors.InvalidCountryCode as error:
        raise InvalidValueError("is not a valid IBAN: unknown country code") from error
    except (iban_errors.SchwiftyException, ValueError) as error:
        raise InvalidValueError("is not a valid IBAN") from error


def format_iban(compact: str) -> str:
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def normalise_birth_date(value: Any, today: date) -> str:
    if isinstance(value, date):
        born = value
    else:
        text = clean_text(value, 10)
        try:
            born = date.fromisoformat(text)
        except ValueError as error:
            raise InvalidValueError("must be a date as YYYY-MM-DD") from error
    if born > today:
        raise InvalidValueError("must not be in the future")
    if today.year - born.year > MAX_AGE_YEARS:
        raise InvalidValueError(f"is not plausible (more than {MAX_AGE_YEARS} years ago)")
    return born.isoformat()


def card_brand(digits: str) -> str:
    for ranges, brand in _CARD_BRANDS:
        for low, high in ranges:
            width = len(str(low))
            if low <= int(digits[:width]) <= high:
                return brand
    return "other"


def parse_card(value: Any) -> Card:
    text = clean_text(value, FIELDS["card"].max_length)
    digits = re.sub(r"[ -]", "", text)
    if not digits.isdigit() or not 12 <= len(digits) <= 19:  # noqa: PLR2004 - ISO/IEC 7812 lengths
        raise InvalidValueError("must be a card number of 12 to 19 digits")
    if not luhn.is_valid(digits):
        raise InvalidValueError("is not a valid card number: the check digit does not match (a typo?)")
    return Card(digits, card_brand(digits), digits[-4:])


def normalise_address(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InvalidValueError("must be an object with line1, postal_code, city and country")
    unknown = set(value) - set(ADDRESS_PARTS)
    if unknown:
        raise InvalidValueError(f"has unknown parts: {', '.join(sorted(map(str, unknown)))}")
    address = {}
    for part in ADDRESS_PARTS:
        raw = value.get(part)
        if raw is None or raw == "":
            if part != "line2":
                raise InvalidValueError(f"needs '{part}'")
            continue
        address[part] = clean_text(raw, 200)
    country = address["country"].upper()
    if country not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidValueError("needs 'country' as an ISO 3166 two-letter code, such as DE")
    address["country"] = country
    return address


def normalise_field(name: str, value: Any, default_region: str, today: date) -> Any:  # noqa: PLR0911 - a case per kind
    spec = FIELDS[name]
    match spec.kind:
        case Kind.TEXT | Kind.NAME:
            return clean_text(value, spec.max_length)
        case Kind.DATE:
            return normalise_birth_date(value, today)
        case Kind.EMAIL:
            return normalise_email(value)
        case Kind.PHONE:
            return normalise_phone(value, default_region)
        case Kind.ADDRESS:
            return normalise_address(value)
        case Kind.IBAN:
            return normalise_iban(value)
        case Kind.CARD:
            return parse_card(value)


def normalise(raw: Mapping[str, Any], default_region: str, today: date, *, partial: bool = False) -> dict[str, Any]:
    """Check and normalise a customer's fields; all problems at once as ValidationFailedError.
    `None` clears a field (in an update). A new customer needs a name or an email to be found again."""
    errors = FieldErrors()
    values: dict[str, Any] = {}
    for name in raw:
        if name not in FIELDS:
            errors.add(name, "is not a customer field", "unknown-field")
    for name, value in raw.items():
        if name not in FIELDS:
            continue
        if value is None or value == "":
            values[name] = None
            continue
        try:
            values[name] = normalise_field(name, value, default_region, today)
        except InvalidValueError as error:
            shown = INPUT_NAMES.get(name, name)
            errors.add(shown, f"{shown} {error}")
    if not partial and not errors.errors and not any(values.get(n) for n in IDENTIFYING):
        errors.add("family_name", IDENTIFYING_MESSAGE, "required")
    errors.raise_if_any()
    return values
