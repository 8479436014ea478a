from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from obhut.customers.service import CustomerView


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line1: str
    line2: str | None = None
    postal_code: str
    city: str
    country: str = Field(description="ISO 3166 two-letter code, such as DE")


class CustomerFields(BaseModel):
    """Every field is optional here; the rules decide what a customer needs. Values are checked by the
    same rules as imports, so the API and the CLI report the same messages."""

    model_config = ConfigDict(extra="forbid")

    external_ref: str | None = Field(None, description="Your own customer number; unique per workspace")
    given_name: str | None = None
    family_name: str | None = None
    birth_date: str | None = Field(None, description="YYYY-MM-DD")
    email: str | None = None
    phone: str | None = Field(None, description="International (+49 30 1234567) or national form")
    postal_address: Address | None = None
    iban: str | None = None
    card_number: str | None = Field(None, description="Kept only as token, brand and last four digits")
    notes: str | None = None

    def supplied(self) -> dict[str, Any]:
        return self.model_dump(include=self.model_fields_set)


class Card(BaseModel):
    token: str | None = Field(description="A keyed token for the card number; absent when masked")
    brand: str
    last4: str


class AddressOut(BaseModel):
    line1: str
    line2: str | None = None
    postal_code: str
    city: str
    country: str | None


class CustomerOut(BaseModel):
    """A customer as the caller may see it. `disclosure` says per field whether it is revealed, masked
    (a partial value, a keyed hash or '[redacted]') or withheld (null: the policy denies it)."""

    id: str
    external_ref: str | None
    given_name: str | None
    family_name: str | None
    birth_date: str | None
    email: str | None
    phone: str | None
    postal_address: AddressOut | str | None
    iban: str | None
    card: Card | str | None
    notes: str | None
    disclosure: dict[str, Literal["revealed", "masked", "withheld"]]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: CustomerView) -> CustomerOut:
        return cls.model_validate(
            {
                "id": view.id,
                **view.values,
                "disclosure": view.disclosure,
                "created_at": view.created_at,
                "updated_at": view.updated_at,
            }
        )


class Lookup(BaseModel):
    """Exactly one search key. Sent in the body, never in the URL, so it stays out of access logs."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = None
    phone: str | None = None
    iban: str | None = None
    card_number: str | None = None
    external_ref: str | None = None
    name: str | None = Field(
        None, description="A family name, or given and family name; case, accents and ä/ae spellings alike"
    )

    @model_validator(mode="after")
    def _one_key(self) -> Lookup:
        if len(self.model_fields_set) != 1:
            raise ValueError("give exactly one of email, phone, iban, card_number, external_ref, name")
        return self

    def key(self) -> tuple[str, str]:
        (name,) = self.model_fields_set
        return ("card" if name == "card_number" else name), getattr(self, name)


class LookupResult(BaseModel):
    customers: list[CustomerOut]


class CustomerPage(BaseModel):
    customers: list[CustomerOut]
    next_after: str | None = Field(description="Pass as `after` for the next page; null on the last page")


class Erased(BaseModel):
    id: str
    erased_at: datetime
    kept: list[str] = Field(default_factory=list, description="What a retention duty or legal hold kept, and why")
    certificate: str = Field(description="The signed erasure certificate (compact JWS, Ed25519)")
