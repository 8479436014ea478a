"""Retention policies and legal holds per workspace, and what they keep of one customer from an erasure."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from obhut.customers.models import Customer
from obhut.customers.rules import Category
from obhut.kit.clock import now
from obhut.kit.errors import FieldErrors, NotFoundError
from obhut.kit.ids import new_id
from obhut.retention import rules
from obhut.retention.models import LegalHold, RetentionPolicy
from obhut.retention.rules import Action, Anchor, Anchors, Hold, Policy
from obhut.rights.ports import Kept, Retained

CATEGORIES = tuple(c.value for c in Category)


def _check(category: str | None, days: int | None = None) -> None:
    errors = FieldErrors()
    if category is not None and category not in CATEGORIES:
        errors.add("category", f"unknown data category '{category}'; use one of {', '.join(CATEGORIES)}")
    if days is not None and not 1 <= days <= 100 * 366:
        errors.add("days", "a retention period is between 1 day and 100 years")
    errors.raise_if_any()


def set_policy(session: Session, workspace_id: str, policy: Policy, by: str) -> RetentionPolicy:
    _check(policy.category, policy.days)
    row = session.get(RetentionPolicy, (workspace_id, policy.category))
    if row is None:
        row = RetentionPolicy(workspace_id=workspace_id, category=policy.category)
        session.add(row)
    row.days, row.anchor, row.action = policy.days, policy.anchor.value, policy.action.value
    row.legal_duty, row.updated_at, row.updated_by = policy.legal_duty, now(), by
    session.flush()
    return row


def remove_policy(session: Session, workspace_id: str, category: str) -> None:
    row = session.get(RetentionPolicy, (workspace_id, category))
    if row is None:
        raise NotFoundError(f"no retention policy for '{category}' in workspace '{workspace_id}'")
    session.delete(row)
    session.flush()


def policies(session: Session, workspace_id: str) -> list[Policy]:
    rows = session.scalars(select(RetentionPolicy).where(RetentionPolicy.workspace_id == workspace_id))
    return [Policy(r.category, r.days, Anchor(r.anchor), Action(r.action), r.legal_duty) for r in rows]


def add_hold(
    session: Session, workspace_id: str, customer_id: str | None, category: str | None, reason: str, by: str
) -> LegalHold:
    _check(category)
    if customer_id is None and category is None:
        errors = FieldErrors()
        errors.add("customer_id", "a legal hold names a customer, a category, or both", "required")
        errors.raise_if_any()
    if customer_id is not None and session.get(Customer, (workspace_id, customer_id)) is None:
        raise NotFoundError(f"no customer {customer_id} in workspace '{workspace_id}'")
    hold = LegalHold(
        workspace_id=workspace_id, hold_id=new_id(), customer_id=customer_id, category=category, reason=reason,
        created_at=now(), created_by=by,
    )  # fmt: skip
    session.add(hold)
    session.flush()
    return hold


def release_hold(session: Session, workspace_id: str, hold_id: str) -> LegalHold:
    hold = session.get(LegalHold, (workspace_id, hold_id))
    if hold is None or hold.released_at is not None:
        raise NotFoundError(f"no active legal hold {hold_id} in workspace '{workspace_id}'")
    hold.released_at = now()
    session.flush()
    return hold


def hold_rows(session: Session, workspace_id: str) -> list[LegalHold]:
    query = select(LegalHold).where(LegalHold.workspace_id == workspace_id, LegalHold.released_at.is_(None))
    return list(session.scalars(query.order_by(LegalHold.created_at)))


def holds(session: Session, workspace_id: str) -> list[Hold]:
    return [Hold(h.hold_id, h.customer_id, h.category, h.reason) for h in hold_rows(session, workspace_id)]


def anchors(customer: Customer) -> Anchors:
    return Anchors(customer.created_at, customer.updated_at, customer.contract_ended_at)


def set_contract_end(session: Session, workspace_id: str, customer_id: str, at: datetime | None) -> None:
    customer = session.get(Customer, (workspace_id, customer_id))
    if customer is None or customer.erased_at is not None:
        raise NotFoundError(f"no customer {customer_id} in workspace '{workspace_id}'")
    customer.contract_ended_at = at
    session.flush()


def retained_for(session: Session, customer: Customer, categories: Collection[str]) -> Retained:
    """What an erasure of the customer must keep of `categories`, and why: legal duties still running, and
    legal holds."""
    workspace_id = customer.workspace_id
    found = rules.retained(
        policies(session, workspace_id), holds(session, workspace_id), customer.id, categories, now(), anchors(customer)
    )
    return Retained({category: Kept(category, why, until) for category, (why, until) in found.items()})
