"""Segmentation: how a customer's fields in the categories a workspace keeps apart go to the sensitive store
(`vault.sensitive`) and come back. The main row keeps a reference to the customer's record there and, for each
field kept apart, the marker KEPT_APART in place of its ciphertext."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from obhut.customers import repository
from obhut.customers.repository import ShownCustomer, StoredCustomer
from obhut.customers.rules import FIELDS
from obhut.kit.errors import ConfigurationError
from obhut.vault.keyring import IntegrityError, Keyring
from obhut.vault.sensitive import Referenced, SensitiveStore

KEPT_APART = b""
"""What the main row holds in place of a field kept in the sensitive store: that it has a value, as its blind
index already shows, so that what reads only the main row (the retention survey, an erasure's kept categories)
still sees which categories a customer has."""


def kept_apart(store: SensitiveStore | None) -> tuple[str, ...]:
    """The fields whose category the sensitive store keeps (none without one). Their blind indexes stay in the
    main database: a keyed hash that reveals only which customers share a value."""
    if store is None:
        return ()
    return tuple(name for name, spec in FIELDS.items() if spec.category.value in store.categories)


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


def referenced_in(sessions: Callable[[], Session], workspace_id: str) -> Referenced:
    """How the sensitive store asks the main database which of some references a committed row holds: in a
    session of its own (after the caller's rollback, or from the sweep)."""

    def referenced(refs: Sequence[bytes]) -> set[bytes]:
        with sessions() as fresh:
            return repository.referenced_sensitive(fresh, workspace_id, refs)

    return referenced


def put(
    store: SensitiveStore, session: Session, keyring: Keyring, records: Sequence[tuple[str, dict[str, bytes]]]
) -> list[bytes]:
    """`SensitiveStore.put`, told how to ask the main database which references a committed row holds."""
    engine = session.get_bind()
    return store.put(session, keyring, records, referenced_in(lambda: Session(engine), keyring.workspace_id))


def filled(store: SensitiveStore | None, keyring: Keyring, customers: Sequence[StoredCustomer]) -> list[StoredCustomer]:
    """The customers with the fields they keep in the sensitive store put back in place (still ciphertext), in
    one read of the store; their reference is left out, so that filling them again reads nothing. The row is
    the authority on which fields have a value: a field it has cleared stays cleared."""
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
        marked = [name for name, blob in stored.items() if blob == KEPT_APART]
        if any(name not in record for name in marked):
            raise IntegrityError(f"the sensitive record of customer {customer.id} lacks a field its row says it has")
        out.append(ShownCustomer(**(stored | {name: record[name] for name in marked} | {"sensitive_ref": None})))
    return out


def rewrite(
    store: SensitiveStore | None,
    session: Session,
    keyring: Keyring,
    customer: StoredCustomer,
    changes: dict[str, Any],
    current: StoredCustomer | None = None,
) -> None:
    """For a change of a stored customer (`changes`: columns, None where a field goes): where it touches a field
    kept apart (or one still in the main row that should be, or one no longer kept apart), a new record of the
    customer's kept-apart fields as they will be, its reference put in `changes` with the fields taken out.
    The old record is deleted once the change commits. The caller holds the row's lock; `current`: the customer
    `filled`, where the caller has read it already."""
    if store is None:
        return
    apart = kept_apart(store)
    stored = {name: getattr(customer, name) for name in FIELDS}
    leaving = [name for name, blob in stored.items() if blob == KEPT_APART and name not in apart]
    unmoved = [name for name in apart if stored[name] not in (None, KEPT_APART)]
    if not (leaving or unmoved or any(name in changes for name in apart)):
        return
    if current is None:
        (current,) = filled(store, keyring, [customer])
    changes.update((name, getattr(current, name)) for name in leaving if name not in changes)  # back to the row
    after = {name: changes.get(name, getattr(current, name)) for name in apart}
    records = move_apart(store, [(customer.id, after)])
    changes.update(after)  # every kept-apart field: values still in the main row move too
    changes["sensitive_ref"] = put(store, session, keyring, records)[0] if records else None
    if customer.sensitive_ref is not None:
        store.drop(session, keyring.workspace_id, [customer.sensitive_ref])
