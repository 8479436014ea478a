from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, bindparam, func, or_, select
from sqlalchemy.orm import Session

from obhut.customers.models import Customer
from obhut.kit import bulk
from obhut.vault.models import DataKey, KeyVersion

_CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]


def get(session: Session, workspace_id: str, customer_id: str) -> Customer | None:
    return session.get(Customer, (workspace_id, customer_id))


# The read of one customer with everything it needs in one round trip: the workspace's key versions (one row
# each, ordered), the customer (or nothing) and its data key.
_WITH_KEYS = (
    select(KeyVersion, Customer, DataKey)
    .outerjoin(Customer, (Customer.workspace_id == KeyVersion.workspace_id) & (Customer.id == bindparam("customer_id")))
    .outerjoin(DataKey, (DataKey.workspace_id == Customer.workspace_id) & (DataKey.subject_id == Customer.id))
    .where(KeyVersion.workspace_id == bindparam("workspace_id"))
    .order_by(KeyVersion.version)
)


def get_with_keys(
    session: Session, workspace_id: str, customer_id: str
) -> tuple[list[KeyVersion], tuple[Customer, DataKey | None] | None]:
    """The workspace's key versions, and the customer with its data key (None if there is none)."""
    rows = session.execute(_WITH_KEYS, {"workspace_id": workspace_id, "customer_id": customer_id}).all()
    versions = [row[0] for row in rows]
    customer = rows[0][1] if rows else None
    return versions, None if customer is None else (customer, rows[0][2])


def by_index(session: Session, workspace_id: str, index: str, digest: bytes, limit: int = 50) -> list[Customer]:
    column = getattr(Customer, f"{index}_index")
    # No ORDER BY in SQL: SQLite would then walk the primary key instead of the blind index.
    query = (
        select(Customer)
        .where(Customer.workspace_id == workspace_id, column == digest, Customer.erased_at.is_(None))
        .limit(limit)
    )
    return sorted(session.scalars(query), key=lambda c: c.id)


@functools.cache
def _by_index_with_data_keys(index: str, limit: int) -> Select[Customer, DataKey]:
    column = getattr(Customer, f"{index}_index")
    return (
        select(Customer, DataKey)
        .outerjoin(DataKey, (DataKey.workspace_id == Customer.workspace_id) & (DataKey.subject_id == Customer.id))
        .where(Customer.workspace_id == bindparam("workspace_id"), column == bindparam("digest"))
        .where(Customer.erased_at.is_(None))
        .limit(limit)
    )


def by_index_with_data_keys(
    session: Session, workspace_id: str, index: str, digest: bytes, limit: int = 50
) -> list[tuple[Customer, DataKey | None]]:
    """Like `by_index`, with each customer's data key joined in (one round trip for a lookup)."""
    found = session.execute(_by_index_with_data_keys(index, limit), {"workspace_id": workspace_id, "digest": digest})
    return sorted(((c, dk) for c, dk in found), key=lambda pair: pair[0].id)


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
