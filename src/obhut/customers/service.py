"""Customer orchestration: validate, encrypt per field, index, store; read back through the vault.
Never commits: the caller's unit of work does."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from obhut.access.masks import Masker
from obhut.access.rules import Effect, ReadPlan
from obhut.customers import repository, rules
from obhut.customers.models import Customer
from obhut.customers.rules import FIELDS, Card, Kind
from obhut.kit import bulk
from obhut.kit.clock import now, today
from obhut.kit.errors import ConflictError, ForbiddenError, NotFoundError, invalid
from obhut.kit.ids import is_valid_id, new_id
from obhut.outbox import service as outbox
from obhut.vault.errors import SubjectShreddedError
from obhut.vault.keyring import Keyring, SubjectCipher
from obhut.vault.models import DataKey
from obhut.vault.service import Vault
from obhut.workspaces import service as workspaces

INPUT_ALIASES = {"card_number": "card"}
LOOKUP_FIELDS = ("email", "phone", "iban", "card", "external_ref", "name")
Match = tuple[Customer, SubjectCipher]  # a customer a lookup found, with the cipher that opens it


@dataclass(frozen=True)
class CustomerRecord:
    """A decrypted customer. Its repr names fields, never values."""

    id: str
    values: dict[str, Any] = field(repr=False)
    created_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:
        present = sorted(k for k, v in self.values.items() if v is not None)
        return f"CustomerRecord({self.id!r}, fields={present})"


@dataclass(frozen=True)
class CustomerView:
    """A customer as one reader may see it: each field revealed, masked or withheld, per the read plan."""

    id: str
    values: dict[str, Any] = field(repr=False)
    disclosure: dict[str, str]
    created_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:
        return f"CustomerView({self.id!r}, disclosure={self.disclosure})"


def canonical_input(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {INPUT_ALIASES.get(key, key): value for key, value in raw.items()}


# built once: json.dumps with options builds an encoder per call
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _encode(kind: Kind, value: Any) -> bytes:
    if kind in (Kind.ADDRESS, Kind.CARD):
        return _JSON.encode(value).encode()
    return str(value).encode()


def _decode(kind: Kind, blob: bytes) -> Any:
    if kind in (Kind.ADDRESS, Kind.CARD):
        return json.loads(blob)
    return blob.decode()


def card_token(index_digest: bytes) -> str:
    return "tok_" + base64.b32encode(index_digest).decode().rstrip("=").lower()


class CustomerService:
    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    # --- writing ------------------------------------------------------------------------------------
    def validate(
        self, session: Session, workspace_id: str, raw: Mapping[str, Any], *, partial: bool = False
    ) -> dict[str, Any]:
        # The workspace's region matters only for national phone numbers: no query on other hot paths.
        region = workspaces.get(session, workspace_id).default_region if "phone" in raw else "DE"
        return rules.normalise(canonical_input(raw), region, today(), partial=partial)

    def columns(self, keyring: Keyring, cipher: SubjectCipher, values: Mapping[str, Any]) -> dict[str, Any]:
        """Ciphertext and blind-index columns for the given (normalised) values; None clears a field."""
        out: dict[str, Any] = {}
        _fill_columns(out, keyring, cipher, values)
        return out

    def add_many(self, session: Session, keyring: Keyring, batch: Sequence[Mapping[str, Any]]) -> list[str]:
        """Store already-validated customers in bulk: one data key each, one insert per table."""
        ids = [new_id() for _ in batch]
        ciphers = keyring.new_subjects(ids)
        stamp = now()
        blank = dict.fromkeys(_ALL_COLUMNS)
        blank.update(workspace_id=keyring.workspace_id, created_at=stamp, updated_at=stamp)
        rows = []
        for customer_id, values in zip(ids, batch, strict=True):
            row = blank.copy()
            row["id"] = customer_id
            _fill_columns(row, keyring, ciphers[customer_id], values)
            rows.append(row)
        repository.insert_many(session, rows)
        return ids

    def create(self, session: Session, workspace_id: str, raw: Mapping[str, Any]) -> CustomerRecord:
        values = self.validate(session, workspace_id, raw)
        keyring = self._vault.open(session, workspace_id)
        self._ensure_unique_ref(session, keyring, values.get("external_ref"), None)
        (customer_id,) = self.add_many(session, keyring, [values])
        return self.get(session, workspace_id, customer_id, keyring)

    def update(self, session: Session, workspace_id: str, customer_id: str, raw: Mapping[str, Any]) -> CustomerRecord:
        changes = self.validate(session, workspace_id, raw, partial=True)
        keyring = self._vault.open(session, workspace_id)
        customer = self._live(session, workspace_id, customer_id)
        merged = {**self._decrypt(keyring, customer).values, **changes}
        if not any(merged.get(name) for name in rules.IDENTIFYING):
            raise invalid("family_name", rules.IDENTIFYING_MESSAGE, "required")
        self._ensure_unique_ref(session, keyring, changes.get("external_ref"), customer_id)
        for name, value in self.columns(keyring, keyring.subject(customer_id), changes).items():
            setattr(customer, name, value)
        customer.updated_at = now()
        session.flush()
        # recipients are told what changed (GDPR Art. 19), by field name only: they fetch values for a purpose
        outbox.emit(
            session, workspace_id, "customer.rectified", customer_id=customer_id, data={"fields": sorted(changes)}
        )
        return self._decrypt(keyring, customer)

    def _ensure_unique_ref(self, session: Session, keyring: Keyring, ref: str | None, own_id: str | None) -> None:
        if not ref:
            return
        digest = keyring.blind_index("external_ref", ref)
        others = [
            c for c in repository.by_index(session, keyring.workspace_id, "external_ref", digest) if c.id != own_id
        ]
        if others:
            raise ConflictError(f"another customer ({others[0].id}) already has this external reference")

    def shred(self, session: Session, workspace_id: str, customer_id: str) -> datetime:
        """Crypto-shred: destroy the data key, then drop ciphertext and blind indexes from the live row."""
        self._existing(session, workspace_id, customer_id)
        return self.shred_many(session, workspace_id, [customer_id])[customer_id]

    def shred_many(self, session: Session, workspace_id: str, customer_ids: Sequence[str]) -> dict[str, datetime]:
        """`shred` for many customers: one shard move per shard, one statement per table. When each was
        shredded (a customer shredded before keeps their time)."""
        tombstones = self._vault.shred_many(session, workspace_id, customer_ids)
        by_time: dict[datetime, list[str]] = {}
        for tombstone in tombstones:
            by_time.setdefault(tombstone.shredded_at, []).append(tombstone.subject_id)
        for at, ids in by_time.items():
            for chunk in bulk.chunks(ids):
                session.execute(
                    update(Customer)
                    .where(Customer.workspace_id == workspace_id, Customer.id.in_(chunk))
                    .values({**dict.fromkeys(_ALL_COLUMNS), "erased_at": at})
                )
        told = [(t.subject_id, {"erased_at": t.shredded_at.isoformat()}) for t in tombstones]
        outbox.emit_many(session, workspace_id, "customer.erased", told)
        return {t.subject_id: t.shredded_at for t in tombstones}

    def clear(self, session: Session, workspace_id: str, customer_id: str, fields: Sequence[str]) -> None:
        """Drops the given fields' ciphertext and blind indexes (an erasure that must keep the rest, or a
        retention period that ended for some categories); recipients are told which fields went."""
        customer = self._live(session, workspace_id, customer_id)
        for name in fields:
            setattr(customer, name, None)
            if name in _INDEX_COLUMNS:
                setattr(customer, _INDEX_COLUMNS[name], None)
        customer.updated_at = now()
        session.flush()
        outbox.emit(session, workspace_id, "customer.erased", customer_id=customer_id, data={"fields": sorted(fields)})

    def remove_row(self, session: Session, workspace_id: str, customer_id: str) -> None:
        """Drops an erased customer's tombstone row (a deletion rather than anonymisation)."""
        session.delete(self._existing(session, workspace_id, customer_id))
        session.flush()

    def remove_rows(self, session: Session, workspace_id: str, customer_ids: Sequence[str]) -> None:
        for chunk in bulk.chunks(customer_ids):
            session.execute(delete(Customer).where(Customer.workspace_id == workspace_id, Customer.id.in_(chunk)))

    def delete(self, session: Session, workspace_id: str, customer_id: str) -> None:
        self.shred(session, workspace_id, customer_id)
        session.delete(self._existing(session, workspace_id, customer_id))
        session.flush()

    # --- reading ------------------------------------------------------------------------------------
    def _existing(self, session: Session, workspace_id: str, customer_id: str) -> Customer:
        customer = repository.get(session, workspace_id, customer_id) if is_valid_id(customer_id) else None
        if customer is None:
            raise NotFoundError(f"no customer {customer_id} in workspace '{workspace_id}'")
        return customer

    def ensure_live(self, session: Session, workspace_id: str, customer_id: str) -> None:
        """404 for an unknown customer, 410 (with the date) for an erased one: before any other check."""
        self._live(session, workspace_id, customer_id)

    def _live(self, session: Session, workspace_id: str, customer_id: str) -> Customer:
        customer = self._existing(session, workspace_id, customer_id)
        if customer.erased_at is not None:
            raise SubjectShreddedError(customer_id, customer.erased_at)
        return customer

    def _decrypt(self, keyring: Keyring, customer: Customer, cipher: SubjectCipher | None = None) -> CustomerRecord:
        cipher = cipher or keyring.subject(customer.id)
        values = {}
        for name, spec in FIELDS.items():
            blob = getattr(customer, name)
            values[name] = None if blob is None else _decode(spec.kind, cipher.open(name, blob))
        return CustomerRecord(customer.id, values, customer.created_at, customer.updated_at)

    def _decrypt_for(self, keyring: Keyring, customer: Customer, cipher: SubjectCipher, plan: ReadPlan) -> CustomerView:
        """Decrypts only what the plan reveals or masks; a withheld field is never decrypted."""
        masker = Masker(keyring.derived_key("mask-hash"))
        values: dict[str, Any] = dict.fromkeys(FIELDS)
        disclosure = {}
        for name, spec in FIELDS.items():
            decision = plan.decision(name)
            blob = getattr(customer, name)
            if decision.effect is Effect.DENY:
                disclosure[name] = "withheld"
                continue
            disclosure[name] = "revealed" if decision.effect is Effect.REVEAL else "masked"
            if blob is None:
                continue
            value = _decode(spec.kind, cipher.open(name, blob))
            values[name] = value if decision.effect is Effect.REVEAL else masker(name, decision.mask, value)
        return CustomerView(customer.id, values, disclosure, customer.created_at, customer.updated_at)

    def _load(
        self, session: Session, workspace_id: str, customer_id: str, keyring: Keyring | None
    ) -> tuple[Keyring, Customer, SubjectCipher]:
        """Customer, cipher and keyring (the caller's, or opened from the versions read in the same round trip)."""
        found_id = customer_id if is_valid_id(customer_id) else ""
        versions, found = repository.get_with_keys(session, workspace_id, found_id)
        keyring = keyring or self._vault.open(session, workspace_id, versions)
        if found is None:
            raise NotFoundError(f"no customer {customer_id} in workspace '{workspace_id}'")
        customer, data_key = found
        if customer.erased_at is not None:
            raise SubjectShreddedError(customer_id, customer.erased_at)
        return keyring, customer, keyring.ciphers_for([customer_id], [data_key] if data_key else [])[customer_id]

    def get(
        self, session: Session, workspace_id: str, customer_id: str, keyring: Keyring | None = None
    ) -> CustomerRecord:
        """Every field decrypted: for the vault's own work (exports, updates), never returned to staff as is."""
        keyring, customer, cipher = self._load(session, workspace_id, customer_id, keyring)
        return self._decrypt(keyring, customer, cipher)

    def view(
        self, session: Session, workspace_id: str, customer_id: str, plan: ReadPlan, keyring: Keyring | None = None
    ) -> CustomerView:
        """The customer as the read plan allows: the one way staff and clients read a customer."""
        keyring, customer, cipher = self._load(session, workspace_id, customer_id, keyring)
        return self._decrypt_for(keyring, customer, cipher, plan)

    def browse(
        self, session: Session, workspace_id: str, after: str, limit: int, plan: ReadPlan, keyring: Keyring
    ) -> list[CustomerView]:
        """A page of live customers in id order, each as the plan allows (masked without a purpose); the
        data keys of the page are opened in one batch."""
        rows = repository.page(session, workspace_id, after, limit)
        ciphers = keyring.subjects([c.id for c in rows])
        return [self._decrypt_for(keyring, c, ciphers[c.id], plan) for c in rows]

    def lookup(
        self,
        session: Session,
        workspace_id: str,
        field_name: str,
        value: Any,
        plan: ReadPlan,
        keyring: Keyring | None = None,
    ) -> list[CustomerView]:
        """Exact match through a blind index, each match shown as the plan allows. A role may search only by
        a field it may at least see masked."""
        if field_name not in LOOKUP_FIELDS:
            known = ", ".join(LOOKUP_FIELDS)
            raise invalid(field_name, f"cannot look customers up by {field_name}; use one of {known}")
        if plan.decision("family_name" if field_name == "name" else field_name).effect is Effect.DENY:
            raise ForbiddenError(f"your role '{plan.role}' may not search customers by {field_name}")
        keyring = keyring or self._vault.open(session, workspace_id)
        if field_name == "name":
            found = self._by_name(session, keyring, value, plan)
        else:
            found = self._matches(session, keyring, field_name, value)
        return [self._decrypt_for(keyring, customer, cipher, plan) for customer, cipher in found]

    def _by_name(self, session: Session, keyring: Keyring, term: Any, plan: ReadPlan) -> list[Match]:
        """Through the family-name index, once per reading of the term; confirmed on the decrypted names. For a
        role that may not see given names the whole term is the family name: it cannot probe them."""
        by_given = plan.decision("given_name").effect is not Effect.DENY
        try:
            searches = rules.name_searches(term)[: None if by_given else 1]
        except rules.InvalidValueError as error:
            raise invalid("name", str(error)) from None
        candidates: dict[str, tuple[Customer, DataKey | None, list[rules.NameSearch]]] = {}
        for search in searches:
            digest = keyring.blind_index("family_name", search.family)
            found = repository.by_index_with_data_keys(session, keyring.workspace_id, "family_name", digest)
            for customer, data_key in found:
                candidates.setdefault(customer.id, (customer, data_key, []))[2].append(search)
        ciphers = keyring.ciphers_for(list(candidates), [dk for _, dk, _ in candidates.values() if dk is not None])
        out = []
        for customer_id, (customer, _, readings) in sorted(candidates.items()):
            cipher = ciphers[customer_id]
            given, family = (
                None if blob is None else cipher.open(name, blob).decode()
                for name, blob in (("given_name", customer.given_name), ("family_name", customer.family_name))
            )
            if any(reading.matches(given, family) for reading in readings):
                out.append((customer, cipher))
        return out

    def _matches(self, session: Session, keyring: Keyring, field_name: str, value: Any) -> list[Match]:
        """Candidates from the blind index, confirmed on the decrypted field, so a truncated-hash collision
        never returns the wrong customer."""
        workspace_id = keyring.workspace_id
        normalised = self.validate(session, workspace_id, {field_name: value}, partial=True)[field_name]
        spec = FIELDS[field_name]
        if isinstance(normalised, Card):
            digest = keyring.blind_index("card", normalised.number)
            expected: Any = card_token(digest)
        else:
            digest = keyring.blind_index(spec.index or field_name, rules.index_form(spec.kind, normalised))
            expected = rules.index_form(spec.kind, normalised)
        found = repository.by_index_with_data_keys(session, workspace_id, spec.index or field_name, digest)
        ciphers = keyring.ciphers_for([c.id for c, _ in found], [dk for _, dk in found if dk is not None])
        out = []
        for customer, _ in found:
            cipher = ciphers[customer.id]
            blob = getattr(customer, field_name)
            stored = None if blob is None else _decode(spec.kind, cipher.open(field_name, blob))
            if spec.kind is Kind.CARD:
                matches = stored is not None and stored["token"] == expected
            else:
                matches = rules.index_form(spec.kind, stored or "") == expected
            if matches:
                out.append((customer, cipher))
        return out

    def records(self, session: Session, workspace_id: str, batch_size: int = 1000) -> Iterator[CustomerRecord]:
        keyring = self._vault.open(session, workspace_id)
        for rows in repository.all_pages(session, workspace_id, batch_size):
            ciphers = keyring.subjects([c.id for c in rows])
            for customer in rows:
                yield self._decrypt(keyring, customer, ciphers[customer.id])


_INDEX_COLUMNS = {spec.name: f"{spec.index}_index" for spec in FIELDS.values() if spec.index}
_ALL_COLUMNS = [*FIELDS, *_INDEX_COLUMNS.values()]


def _fill_columns(out: dict[str, Any], keyring: Keyring, cipher: SubjectCipher, values: Mapping[str, Any]) -> None:
    """`CustomerService.columns` written into `out`, so that a bulk insert fills each row in place."""
    names: list[str] = []
    plaintexts: list[bytes] = []
    for name, value in values.items():
        spec = FIELDS[name]
        index_column = _INDEX_COLUMNS.get(name)
        if value is None:
            out[name] = None
            if index_column:
                out[index_column] = None
            continue
        stored = value
        if isinstance(value, Card):
            digest = keyring.blind_index("card", value.number)
            out["card_index"] = digest
            stored = {"token": card_token(digest), "brand": value.brand, "last4": value.last4}
        elif index_column and spec.index:
            out[index_column] = keyring.blind_index(spec.index, rules.index_form(spec.kind, value))
        names.append(name)
        plaintexts.append(stored.encode() if isinstance(stored, str) else _encode(spec.kind, stored))
    out.update(zip(names, cipher.seal_fields(names, plaintexts), strict=True))
