"""How a customer's values become stored columns (ciphertext and blind indexes) and back."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from obhut.customers import rules
from obhut.customers.repository import ShownCustomer, StoredCustomer
from obhut.customers.rules import FIELDS, Card, Kind
from obhut.kit.errors import ConfigurationError
from obhut.vault.keyring import IntegrityError, Keyring, SubjectCipher
from obhut.vault.sensitive import SensitiveStore

# built once: json.dumps with options builds an encoder per call
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode(kind: Kind, value: Any) -> bytes:
    if kind in (Kind.ADDRESS, Kind.CARD):
        return _JSON.encode(value).encode()
    return str(value).encode()


def decode(kind: Kind, blob: bytes) -> Any:
    if kind in (Kind.ADDRESS, Kind.CARD):
        return json.loads(blob)
    return blob.decode()


def opened(cipher: SubjectCipher, customer: StoredCustomer, names: Iterable[str]) -> dict[str, Any]:
    """The decrypted values of those of `names` the stored customer has (a field without a value is left out),
    opened in one call."""
    blobs = {name: blob for name in names if (blob := getattr(customer, name)) is not None}
    plains = cipher.open_fields(list(blobs), list(blobs.values()))
    return {name: decode(FIELDS[name].kind, plain) for name, plain in zip(blobs, plains, strict=True)}


def card_token(index_digest: bytes) -> str:
    return "tok_" + base64.b32encode(index_digest).decode().rstrip("=").lower()


INDEX_COLUMNS = {spec.name: f"{spec.index}_index" for spec in FIELDS.values() if spec.index}
ALL_COLUMNS = [*FIELDS, *INDEX_COLUMNS.values(), "sensitive_ref"]


def fill(out: dict[str, Any], keyring: Keyring, cipher: SubjectCipher, values: Mapping[str, Any]) -> None:
    """`CustomerService.columns` written into `out`, so that a bulk insert fills each row in place."""
    names: list[str] = []
    plaintexts: list[bytes] = []
    for name, value in values.items():
        spec = FIELDS[name]
        index_column = INDEX_COLUMNS.get(name)
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
        plaintexts.append(stored.encode() if isinstance(stored, str) else encode(spec.kind, stored))
    out.update(zip(names, cipher.seal_fields(names, plaintexts), strict=True))


# --- the sensitive store ------------------------------------------------------------------------------
def kept_apart(store: SensitiveStore | None) -> tuple[str, ...]:
    """The fields whose category the sensitive store keeps (none without one). Their blind indexes stay in the
    main database: a keyed hash that reveals only which customers share a value."""
    if store is None:
        return ()
    return tuple(name for name, spec in FIELDS.items() if spec.category.value in store.categories)


KEPT_APART = b""
"""What the main row holds in place of a field kept in the sensitive store: that it has a value, as its blind
index already shows, so that what reads only the main row (the retention survey, an erasure's kept categories)
still sees which categories a customer has."""


def move_apart(
    store: SensitiveStore | None, rows: Sequence[tuple[str, dict[str, Any]]]
) -> list[tuple[str, dict[str, bytes]]]:
    """Takes the kept-apart fields' ciphertexts out of each (customer, row of columns), leaving KEPT_APART (or
    None where a field has no value): the records for the sensitive store, of the customers that have any."""
    apart = kept_apart(store)
    out = []
    for customer_id, row in rows:
        fields = {name: row[name] for name in apart if row.get(name) is not None}
        row.update((name, KEPT_APART if name in fields else None) for name in apart)
        if fields:
            out.append((customer_id, fields))
    return out


def filled(store: SensitiveStore | None, keyring: Keyring, customers: Sequence[StoredCustomer]) -> list[StoredCustomer]:
    """The customers with the fields they keep in the sensitive store put back in place (still ciphertext), in
    one read of the store; their reference is left out, so that filling them again reads nothing."""
    wanted = {c.sensitive_ref: c.id for c in customers if c.sensitive_ref is not None}
    if not wanted:
        return list(customers)
    if store is None:
        raise ConfigurationError(
            "customers here keep fields in a sensitive database, which is not configured (set OBHUT_SENSITIVE_URL)"
        )
    records = store.get(keyring, wanted)
    out: list[StoredCustomer] = []
    for customer in customers:
        if customer.sensitive_ref is None:
            out.append(customer)
            continue
        stored = {name: getattr(customer, name) for name in ShownCustomer._fields}
        record = records[customer.sensitive_ref]
        if any(blob == KEPT_APART and name not in record for name, blob in stored.items()):
            raise IntegrityError(f"the sensitive record of customer {customer.id} lacks a field its row says it has")
        out.append(ShownCustomer(**(stored | record | {"sensitive_ref": None})))
    return out


def rewrite_apart(
    store: SensitiveStore | None, session: Session, keyring: Keyring, customer: StoredCustomer, changes: dict[str, Any]
) -> bytes | None:
    """For a change of a stored customer (`changes`: columns, None where a field goes): a new record of the
    customer's kept-apart fields as they will be, with the changed ones taken out of `changes`. Its reference
    (None when no field is left), to store in place of the old one, which the caller sees deleted or swept."""
    if store is None:
        return customer.sensitive_ref
    (current,) = filled(store, keyring, [customer])
    apart = kept_apart(store)
    for name in FIELDS:  # a category no longer kept apart goes back to the main row
        if name not in apart and name not in changes and getattr(customer, name) == KEPT_APART:
            changes[name] = getattr(current, name)
    after = {name: changes.get(name, getattr(current, name)) for name in apart}
    records = move_apart(store, [(customer.id, after)])
    changes.update(after)  # every kept-apart field: values still in the main row move too
    return store.put(session, keyring, records)[0] if records else None
