"""Customer orchestration: validate, encrypt per field, index, store; read back through the vault.
Never commits: the caller's unit of work does."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from obhut.access.masks import Masker
from obhut.access.rules import Effect, ReadPlan
from obhut.customers import columns, repository, rules, segments
from obhut.customers.models import Customer
from obhut.customers.rules import FIELDS, Card, Kind
from obhut.kit import bulk
from obhut.kit.clock import now, today
from obhut.kit.errors import ConflictError, ForbiddenError, NotFoundError, invalid
from obhut.kit.ids import is_valid_id, new_id
from obhut.outbox import service as outbox
from obhut.vault.errors import SubjectShreddedError
from obhut.vault.keyring import Keyring, SubjectCipher
from obhut.vault.rules import WrappedDataKey
from obhut.vault.service import Vault
from obhut.workspaces import service as workspaces

INPUT_ALIASES = {"card_number": "card"}
FIELD_NAMES = tuple(FIELDS)
LOOKUP_FIELDS = ("email", "phone", "iban", "card", "external_ref", "name")
Match = tuple[repository.StoredCustomer, SubjectCipher]  # a customer a lookup found, with the cipher that opens it


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
        columns.fill(out, keyring, cipher, values)
        return out

    def add_many(self, session: Session, keyring: Keyring, batch: Sequence[Mapping[str, Any]]) -> list[str]:
        """Store already-validated customers in bulk: one data key each, one insert per table."""
        ids = [new_id() for _ in batch]
        ciphers = keyring.new_subjects(ids)
        stamp = now()
        blank = dict.fromkeys(columns.ALL_COLUMNS)
        blank.update(workspace_id=keyring.workspace_id, created_at=stamp, updated_at=stamp)
        rows = []
        for customer_id, values in zip(ids, batch, strict=True):
            row = blank.copy()
            row["id"] = customer_id
            columns.fill(row, keyring, ciphers[customer_id], values)
            rows.append(row)
        store = self._vault.sensitive
        if store is not None and (records := segments.move_apart(store, list(zip(ids, rows, strict=True)))):
            placed = dict(zip(ids, rows, strict=True))
            for (customer_id, _), ref in zip(records, segments.put(store, session, keyring, records), strict=True):
                placed[customer_id]["sensitive_ref"] = ref
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
        customer = self._live(session, workspace_id, customer_id, lock=True)
        (current,) = self._filled(keyring, [customer])
        merged = {**self._decrypt(keyring, current).values, **changes}
        if not any(merged.get(name) for name in rules.IDENTIFYING):
            raise invalid("family_name", rules.IDENTIFYING_MESSAGE, "required")
        self._ensure_unique_ref(session, keyring, changes.get("external_ref"), customer_id)
        changed = self.columns(keyring, keyring.subject(customer_id), changes)
        segments.rewrite(self._vault.sensitive, session, keyring, customer, changed, current)
        for name, value in changed.items():
            setattr(customer, name, value)
        customer.updated_at = now()
        session.flush()
        # recipients are told what changed (GDPR Art. 19), by field name only: they fetch values for a purpose
        outbox.emit(
            session, workspace_id, "customer.rectified", customer_id=customer_id, data={"fields": sorted(changes)}
        )
        return self._decrypt(keyring, self._filled(keyring, [customer])[0])

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

    def shred_many(
        self, session: Session, workspace_id: str, customer_ids: Sequence[str], rows_go: Collection[str] = ()
    ) -> dict[str, datetime]:
        """`shred` for many customers: one shard move per shard, one statement per table. When each was
        shredded (a customer shredded before keeps their time). `rows_go`: rows the caller deletes next, left
        as they are here (their ciphertext is dead once the key is)."""
        tombstones, going = self._vault.shred_many(session, workspace_id, customer_ids), set(rows_go)
        by_time: dict[datetime, list[str]] = {}
        for tombstone in tombstones:
            if tombstone.subject_id not in going:
                by_time.setdefault(tombstone.shredded_at, []).append(tombstone.subject_id)
        for at, ids in by_time.items():
            for chunk in bulk.chunks(ids):
                session.execute(
                    update(Customer)
                    .where(Customer.workspace_id == workspace_id, Customer.id.in_(chunk))
                    .values({**dict.fromkeys(columns.ALL_COLUMNS), "erased_at": at})
                )
        if self._vault.sensitive is not None:
            self._vault.sensitive.forget(session, workspace_id, list(customer_ids))
        told = [(t.subject_id, {"erased_at": t.shredded_at.isoformat()}) for t in tombstones]
        outbox.emit_many(session, workspace_id, "customer.erased", told)
        return {t.subject_id: t.shredded_at for t in tombstones}

    def clear(self, session: Session, workspace_id: str, customer_id: str, fields: Sequence[str]) -> None:
        """Drops the given fields' ciphertext and blind indexes (an erasure that must keep the rest, or a
        retention period that ended for some categories); recipients are told which fields went."""
        customer = self._live(session, workspace_id, customer_id, lock=True)
        cleared: dict[str, Any] = dict.fromkeys(fields)
        cleared.update((columns.INDEX_COLUMNS[name], None) for name in fields if name in columns.INDEX_COLUMNS)
        if self._vault.sensitive is not None:  # the record that held them goes at commit
            keyring = self._vault.open(session, workspace_id)
            segments.rewrite(self._vault.sensitive, session, keyring, customer, cleared)
        for name, value in cleared.items():
            setattr(customer, name, value)
        customer.updated_at = now()
        session.flush()
        outbox.emit(session, workspace_id, "customer.erased", customer_id=customer_id, data={"fields": sorted(fields)})

    def remove_row(self, session: Session, workspace_id: str, customer_id: str) -> None:
        """Drops an erased customer's tombstone row (a deletion rather than anonymisation)."""
        session.delete(self._existing(session, workspace_id, customer_id))
        session.flush()

    def remove_rows(self, session: Session, workspace_id: str, customer_ids: Sequence[str]) -> None:
        """Deletes the rows of customers erased in this transaction (no object of theirs is loaded in it)."""
        ids = bulk.among(session, Customer.id, customer_ids)
        session.execute(
            delete(Customer)
            .where(Customer.workspace_id == workspace_id, ids)
            .execution_options(synchronize_session=False)
        )

    def delete(self, session: Session, workspace_id: str, customer_id: str) -> None:
        self.shred(session, workspace_id, customer_id)
        session.delete(self._existing(session, workspace_id, customer_id))
        session.flush()

    # --- reading ------------------------------------------------------------------------------------
    def _existing(self, session: Session, workspace_id: str, customer_id: str, *, lock: bool = False) -> Customer:
        """The stored row; `lock`: held until commit where a sensitive store is kept (a change there writes a new
        record from the one read, so two changes at once must not both start from the same)."""
        lock = lock and self._vault.sensitive is not None
        customer = repository.get(session, workspace_id, customer_id, lock=lock) if is_valid_id(customer_id) else None
        if customer is None:
            raise NotFoundError(f"no customer {customer_id} in workspace '{workspace_id}'")
        return customer

    def ensure_live(self, session: Session, workspace_id: str, customer_id: str) -> None:
        """404 for an unknown customer, 410 (with the date) for an erased one: before any other check."""
        self._live(session, workspace_id, customer_id)

    def _live(self, session: Session, workspace_id: str, customer_id: str, *, lock: bool = False) -> Customer:
        customer = self._existing(session, workspace_id, customer_id, lock=lock)
        if customer.erased_at is not None:
            raise SubjectShreddedError(customer_id, customer.erased_at)
        return customer

    def _filled(
        self, keyring: Keyring, customers: Sequence[repository.StoredCustomer]
    ) -> list[repository.StoredCustomer]:
        """Where customers are read: their kept-apart fields in place, so that `_decrypt` and `_decrypt_for`
        (which take them filled) see every field."""
        return segments.filled(self._vault.sensitive, keyring, customers)

    def _filled_found(
        self, keyring: Keyring, found: Sequence[repository.Found]
    ) -> list[tuple[repository.StoredCustomer, WrappedDataKey | None]]:
        customers = self._filled(keyring, [customer for customer, _ in found])
        return [(customer, data_key) for customer, (_, data_key) in zip(customers, found, strict=True)]

    def _decrypt(
        self, keyring: Keyring, customer: repository.StoredCustomer, cipher: SubjectCipher | None = None
    ) -> CustomerRecord:
        cipher = cipher or keyring.subject(customer.id)
        values = dict.fromkeys(FIELDS) | columns.opened(cipher, customer, FIELDS)
        return CustomerRecord(customer.id, values, customer.created_at, customer.updated_at)

    def _decrypt_for(
        self, keyring: Keyring, customer: repository.StoredCustomer, cipher: SubjectCipher, plan: ReadPlan
    ) -> CustomerView:
        """Decrypts only what the plan reveals or masks; a withheld field is never decrypted."""
        disclosure = plan.disclosure(FIELD_NAMES)
        values = dict.fromkeys(FIELDS) | columns.opened(
            cipher, customer, [n for n, how in disclosure.items() if how != "withheld"]
        )
        masked = [name for name, how in disclosure.items() if how == "masked" and values[name] is not None]
        if masked:  # the masker's key only where something is masked: most reads reveal or withhold
            masker = Masker(keyring.derived_key("mask-hash"))
            values.update((name, masker(name, plan.decision(name).mask, values[name])) for name in masked)
        return CustomerView(customer.id, values, dict(disclosure), customer.created_at, customer.updated_at)

    def _load(
        self, session: Session, workspace_id: str, customer_id: str, keyring: Keyring | None
    ) -> tuple[Keyring, repository.StoredCustomer, SubjectCipher]:
        """Customer, cipher and keyring (the caller's, or opened from the versions read in the same round trip)."""
        found_id = customer_id if is_valid_id(customer_id) else ""
        versions, found = repository.get_with_keys(session, workspace_id, found_id)
        keyring = keyring or self._vault.open(session, workspace_id, versions)
        if found is None:
            raise NotFoundError(f"no customer {customer_id} in workspace '{workspace_id}'")
        customer, data_key = found
        if customer.erased_at is not None:
            raise SubjectShreddedError(customer_id, customer.erased_at)
        (filled,) = self._filled(keyring, [customer])
        return keyring, filled, keyring.ciphers_for([customer_id], [data_key] if data_key else [])[customer_id]

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
        rows = self._filled(keyring, repository.page(session, workspace_id, after, limit))
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
        if field_name == "name":
            keyring = keyring or self._vault.open(session, workspace_id)
            found = self._by_name(session, keyring, value, plan)
        else:
            keyring, found = self._matches(session, workspace_id, field_name, value, keyring)
        return [self._decrypt_for(keyring, customer, cipher, plan) for customer, cipher in found]

    def _by_name(self, session: Session, keyring: Keyring, term: Any, plan: ReadPlan) -> list[Match]:
        """Through the family-name index, once per reading of the term; confirmed on the decrypted names. For a
        role that may not see given names the whole term is the family name: it cannot probe them."""
        by_given = plan.decision("given_name").effect is not Effect.DENY
        try:
            searches = rules.name_searches(term)[: None if by_given else 1]
        except rules.InvalidValueError as error:
            raise invalid("name", str(error)) from None
        candidates: dict[str, tuple[repository.StoredCustomer, WrappedDataKey | None, list[rules.NameSearch]]] = {}
        for search in searches:
            digest = keyring.blind_index("family_name", search.family)
            found = self._filled_found(
                keyring, repository.by_index_with_data_keys(session, keyring.workspace_id, "family_name", digest)
            )
            for customer, data_key in found:
                candidates.setdefault(customer.id, (customer, data_key, []))[2].append(search)
        ciphers = keyring.ciphers_for(list(candidates), [dk for _, dk, _ in candidates.values() if dk is not None])
        out = []
        for customer_id, (customer, _, readings) in sorted(candidates.items()):
            cipher = ciphers[customer_id]
            names = columns.opened(cipher, customer, ("given_name", "family_name"))
            if any(reading.matches(names.get("given_name"), names.get("family_name")) for reading in readings):
                out.append((customer, cipher))
        return out

    def _matches(
        self, session: Session, workspace_id: str, field_name: str, value: Any, keyring: Keyring | None
    ) -> tuple[Keyring, list[Match]]:
        """Candidates from the blind index, confirmed on the decrypted field, so a truncated-hash collision
        never returns the wrong customer."""
        normalised = self.validate(session, workspace_id, {field_name: value}, partial=True)[field_name]
        spec = FIELDS[field_name]
        index = spec.index or field_name
        indexed = normalised.number if isinstance(normalised, Card) else rules.index_form(spec.kind, normalised)
        keyring, digest, candidates = self._candidates(session, workspace_id, index, indexed, keyring)
        found = self._filled_found(keyring, candidates)
        expected = columns.card_token(digest) if isinstance(normalised, Card) else indexed
        ciphers = keyring.ciphers_for([c.id for c, _ in found], [dk for _, dk in found if dk is not None])
        out = []
        for customer, _ in found:
            cipher = ciphers[customer.id]
            stored = columns.opened(cipher, customer, [field_name]).get(field_name)
            if spec.kind is Kind.CARD:
                matches = stored is not None and stored["token"] == expected
            else:
                matches = rules.index_form(spec.kind, stored or "") == expected
            if matches:
                out.append((customer, cipher))
        return keyring, out

    def _candidates(
        self, session: Session, workspace_id: str, index: str, indexed: str, keyring: Keyring | None
    ) -> tuple[Keyring, bytes, list[repository.Found]]:
        """The customers the blind index finds, with their data keys. Without a keyring, the workspace's key
        versions come in the same round trip, the index computed from the keys this process holds and confirmed
        with the keyring opened from them (read again in the rare case it was not the right one)."""
        if keyring is None and (guess := self._vault.guess_blind_index(workspace_id, index, indexed)) is not None:
            joined = repository.by_index_with_keys(session, workspace_id, index, guess.digest)
            keyring = self._vault.open(session, workspace_id, joined[0] if joined else None)
            if joined is not None and keyring.confirms(guess):
                return keyring, guess.digest, joined[1]
        keyring = keyring or self._vault.open(session, workspace_id)
        digest = keyring.blind_index(index, indexed)
        return keyring, digest, repository.by_index_with_data_keys(session, workspace_id, index, digest)

    def records(self, session: Session, workspace_id: str, batch_size: int = 1000) -> Iterator[CustomerRecord]:
        keyring = self._vault.open(session, workspace_id)
        for page in repository.all_pages(session, workspace_id, batch_size):
            rows = self._filled(keyring, page)
            ciphers = keyring.subjects([c.id for c in rows])
            for customer in rows:
                yield self._decrypt(keyring, customer, ciphers[customer.id])
