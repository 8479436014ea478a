from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Row, Select, Table, bindparam, func, or_, select
from sqlalchemy.orm import Session

from obhut.customers.models import Customer
from obhut.kit import bulk
from obhut.vault import repository as vault_repository
from obhut.vault.models import DataKey, KeyVersion
from obhut.vault.rules import RootKey, WrappedDataKey

_CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]


def get(session: Session, workspace_id: str, customer_id: str, *, lock: bool = False) -> Customer | None:
    """The row; `lock`: read afresh and locked until commit (PostgreSQL; SQLite has one writer anyway)."""
    if lock:
        return session.get(Customer, (workspace_id, customer_id), with_for_update=True, populate_existing=True)
    return session.get(Customer, (workspace_id, customer_id))


class ShownCustomer(NamedTuple):
    """A customer as reads for showing take it: the encrypted fields and the dates, not the blind indexes. A
    plain tuple, not an ORM object (loading one of those costs more than the query itself on SQLite)."""

    id: str
    external_ref: bytes | None
    given_name: bytes | None
    family_name: bytes | None
    birth_date: bytes | None
    email: bytes | None
    phone: bytes | None
    postal_address: bytes | None
    iban: bytes | None
    card: bytes | None
    notes: bytes | None
    created_at: datetime
    updated_at: datetime
    erased_at: datetime | None
    sensitive_ref: bytes | None

    def __repr__(self) -> str:
        return f"ShownCustomer({self.id!r})"


# The reads below go straight to the session's connection, each statement built once.
StoredCustomer = Customer | ShownCustomer
Found = tuple[ShownCustomer, WrappedDataKey | None]  # a customer a read found, with its data key if it has one
AnyRow = Row[*tuple[Any, ...]]
_VERSIONS: Table = KeyVersion.__table__  # type: ignore[assignment]
_DATA_KEYS: Table = DataKey.__table__  # type: ignore[assignment]
_SHOWN = [_CUSTOMERS.c[name] for name in ShownCustomer._fields]
_HAS_DATA_KEY = (_DATA_KEYS.c.workspace_id == _CUSTOMERS.c.workspace_id) & (_DATA_KEYS.c.subject_id == _CUSTOMERS.c.id)
_ROOT_WIDTH, _DATA_KEY_WIDTH = len(vault_repository.ROOT_KEY_COLUMNS), len(vault_repository.DATA_KEY_COLUMNS)
_VERSION_AT = list(RootKey.__dataclass_fields__).index("version")

LOOKUP_LIMIT = 50  # customers a lookup answers at most
_JOINED_ROWS = 256  # rows of (version, customer) one round trip takes; more go the two-query way


def _with_keys(match: ColumnElement[bool]) -> Select[*tuple[Any, ...]]:
    """The workspace's key versions (a row each), each with the customers `match` finds and their data keys:
    a read with everything it needs to decrypt in one round trip."""
    return (
        select(*vault_repository.ROOT_KEY_COLUMNS, *vault_repository.DATA_KEY_COLUMNS, *_SHOWN)
        .select_from(_VERSIONS)
        .outerjoin(_CUSTOMERS, (_CUSTOMERS.c.workspace_id == _VERSIONS.c.workspace_id) & match)
        .outerjoin(_DATA_KEYS, _HAS_DATA_KEY)
        .where(_VERSIONS.c.workspace_id == bindparam("workspace_id"))
    )


_WITH_KEYS = _with_keys(_CUSTOMERS.c.id == bindparam("customer_id"))


def _found(row: AnyRow, start: int) -> Found:
    """The data key columns from `start`, then the customer's."""
    data_key = row[start : start + _DATA_KEY_WIDTH]
    return ShownCustomer._make(row[start + _DATA_KEY_WIDTH :]), None if data_key[0] is None else WrappedDataKey(
        *data_key
    )


def _keys_and_customers(rows: Sequence[AnyRow]) -> tuple[list[RootKey], list[Found]]:
    """Rows of `_with_keys`: the versions, oldest first, and the customers in id order, each once."""
    versions: dict[int, RootKey] = {}
    customers: dict[str, Found] = {}
    for row in rows:
        if row[_VERSION_AT] not in versions:
            versions[row[_VERSION_AT]] = RootKey(*row[:_ROOT_WIDTH])
        customer_id = row[_ROOT_WIDTH + _DATA_KEY_WIDTH]
        if customer_id is not None and customer_id not in customers:
            customers[customer_id] = _found(row, _ROOT_WIDTH)
    return [versions[v] for v in sorted(versions)], [customers[c] for c in sorted(customers)]


def get_with_keys(session: Session, workspace_id: str, customer_id: str) -> tuple[list[RootKey], Found | None]:
    """The workspace's key versions, and the customer with its data key (None if there is none)."""
    rows = session.connection().execute(_WITH_KEYS, {"workspace_id": workspace_id, "customer_id": customer_id}).all()
    versions, found = _keys_and_customers(rows)
    return versions, found[0] if found else None


def by_index(
    session: Session, workspace_id: str, index: str, digest: bytes, limit: int = LOOKUP_LIMIT
) -> list[Customer]:
    column = getattr(Customer, f"{index}_index")
    # No ORDER BY in SQL: SQLite would then walk the primary key instead of the blind index.
    query = (
        select(Customer)
        .where(Customer.workspace_id == workspace_id, column == digest, Customer.erased_at.is_(None))
        .limit(limit)
    )
    return sorted(session.scalars(query), key=lambda c: c.id)


@functools.cache
def _by_index_with_data_keys(index: str, limit: int) -> Select[*tuple[Any, ...]]:
    return (
        select(*vault_repository.DATA_KEY_COLUMNS, *_SHOWN)
        .select_from(_CUSTOMERS)
        .outerjoin(_DATA_KEYS, _HAS_DATA_KEY)
        .where(_CUSTOMERS.c.workspace_id == bindparam("workspace_id"))
        .where(_CUSTOMERS.c[f"{index}_index"] == bindparam("digest"), _CUSTOMERS.c.erased_at.is_(None))
        .limit(limit)
    )


def by_index_with_data_keys(
    session: Session, workspace_id: str, index: str, digest: bytes, limit: int = LOOKUP_LIMIT
) -> list[Found]:
    """Like `by_index`, with each customer's data key joined in (one round trip for a lookup)."""
    statement = _by_index_with_data_keys(index, limit)
    found = session.connection().execute(statement, {"workspace_id": workspace_id, "digest": digest})
    return sorted((_found(row, 0) for row in found), key=lambda pair: pair[0].id)


@functools.cache
def _by_index_with_keys(index: str) -> Select[*tuple[Any, ...]]:
    live = _CUSTOMERS.c.erased_at.is_(None)
    return _with_keys((_CUSTOMERS.c[f"{index}_index"] == bindparam("digest")) & live).limit(_JOINED_ROWS)


def by_index_with_keys(
    session: Session, workspace_id: str, index: str, digest: bytes
) -> tuple[list[RootKey], list[Found]] | None:
    """`by_index_with_data_keys` and the workspace's key versions in one round trip; None where the index value
    is too common for that (the caller reads the versions, then the first LOOKUP_LIMIT customers)."""
    statement = _by_index_with_keys(index)
    rows = session.connection().execute(statement, {"workspace_id": workspace_id, "digest": digest}).all()
    if len(rows) == _JOINED_ROWS:
        return None
    versions, found = _keys_and_customers(rows)
    return versions, found[:LOOKUP_LIMIT]


def existing_index_values(session: Session, workspace_id: str, index: str, digests: Sequence[bytes]) -> set[bytes]:
    if not digests:
        return set()
    column = getattr(Customer, f"{index}_index")
    query = select(column).where(Customer.workspace_id == workspace_id, column.in_(digests))
    return set(session.scalars(query))


def insert_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    bulk.insert_rows(session, _CUSTOMERS, rows)


def page(session: Session, workspace_id: str, after: str, limit: int) -> list[Customer]:
    query = (
        select(Customer)
        .where(Customer.workspace_id == workspace_id, Customer.id > after, Customer.erased_at.is_(None))
        .order_by(Customer.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def all_pages(session: Session, workspace_id: str, batch_size: int) -> Iterator[list[Customer]]:
    after = ""
    while rows := page(session, workspace_id, after, batch_size):
        yield rows
        after = rows[-1].id


def _unindexed(fields: Sequence[tuple[str, str]]) -> ColumnElement[bool]:
    """Customers with a value in one of the (field, index) pairs but no index value for it."""
    return or_(*(getattr(Customer, f).is_not(None) & getattr(Customer, f"{i}_index").is_(None) for f, i in fields))


def unindexed(
    session: Session, workspace_id: str, fields: Sequence[tuple[str, str]], after: str, limit: int
) -> list[Customer]:
    query = (
        select(Customer)
        .where(Customer.workspace_id == workspace_id, Customer.id > after, _unindexed(fields))
        .order_by(Customer.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def count_unindexed(session: Session, workspace_id: str, fields: Sequence[tuple[str, str]]) -> int:
    query = select(func.count()).select_from(Customer).where(Customer.workspace_id == workspace_id, _unindexed(fields))
    return session.scalar(query) or 0


def workspaces_unindexed(session: Session, fields: Sequence[tuple[str, str]]) -> list[str]:
    return list(session.scalars(select(Customer.workspace_id).where(_unindexed(fields)).distinct()))


def referenced_sensitive(session: Session, workspace_id: str, refs: Sequence[bytes]) -> set[bytes]:
    """Which of these sensitive-store references a customer's row holds."""
    query = select(Customer.sensitive_ref).where(
        Customer.workspace_id == workspace_id, Customer.sensitive_ref.in_(refs)
    )
    return {ref for ref in session.scalars(query) if ref is not None}
