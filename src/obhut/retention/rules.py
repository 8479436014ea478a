"""Retention, pure: how long each category of a customer's data is kept, counted from which event, what
happens at the end, which duties the law puts on keeping it, and what legal holds stop. No database or web.

A policy with a `legal_duty` (German commercial and tax records: HGB §257, AO §147, six or ten years) is a
minimum as well as a maximum: until it ends, an erasure keeps the category, restricted to that duty."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Anchor(StrEnum):
    """The event a retention period counts from."""

    COLLECTION = "collection"  # the customer was created
    LAST_ACTIVITY = "last_activity"  # the customer's record last changed
    CONTRACT_END = "contract_end"  # the business recorded the end of the contract


class Action(StrEnum):
    DELETE = "delete"  # the data and the customer's row go
    ANONYMISE = "anonymise"  # the data goes (its key is shredded); a row without personal data stays for counts


@dataclass(frozen=True)
class Policy:
    category: str
    days: int
    anchor: Anchor
    action: Action
    legal_duty: str = ""  # the law that requires keeping it this long, e.g. "AO §147 (10 years)"


@dataclass(frozen=True)
class Anchors:
    """One customer's dates a period can count from; `contract_end` is None while the contract runs."""

    collection: datetime
    last_activity: datetime
    contract_end: datetime | None

    def of(self, anchor: Anchor) -> datetime | None:
        return {
            Anchor.COLLECTION: self.collection,
            Anchor.LAST_ACTIVITY: self.last_activity,
            Anchor.CONTRACT_END: self.contract_end,
        }[anchor]


@dataclass(frozen=True)
class Hold:
    """A legal hold: stops deletion for one customer, one category, or one category of one customer."""

    hold_id: str
    customer_id: str | None
    category: str | None
    reason: str

    def covers(self, customer_id: str, category: str) -> bool:
        return self.customer_id in (None, customer_id) and self.category in (None, category)


def ends_at(policy: Policy, anchors: Anchors) -> datetime | None:
    """When the period ends; None while it has not started (a contract that has not ended)."""
    start = anchors.of(policy.anchor)
    return None if start is None else start + timedelta(days=policy.days)


def latest_starts(policies: Iterable[Policy], at: datetime) -> list[tuple[Policy, datetime]]:
    """Each policy with the latest start of a period that has ended by `at` (start + days <= at exactly when
    start <= at - days): computed once for the many customers a purge looks at."""
    return [(policy, at - timedelta(days=policy.days)) for policy in policies]


def due_categories(policies: Iterable[Policy], anchors: Anchors, at: datetime) -> dict[str, Action]:
    """The categories whose period has ended, with what happens to them."""
    return {
        policy.category: policy.action
        for policy, latest in latest_starts(policies, at)
        if (start := anchors.of(policy.anchor)) is not None and start <= latest
    }


def retained(
    policies: Iterable[Policy], holds: Iterable[Hold], customer_id: str, categories: Collection[str], at: datetime,
    anchors: Anchors,
) -> dict[str, tuple[str, datetime | None]]:  # fmt: skip
    """What an erasure must keep of the customer's `categories`: per category, why (the duty or the hold)
    and until when (None: until the contract's end is recorded, or the hold is lifted)."""
    kept: dict[str, tuple[str, datetime | None]] = {}
    for policy in policies:
        if policy.legal_duty and policy.category in categories:
            end = ends_at(policy, anchors)
            if end is None or end > at:
                kept[policy.category] = (policy.legal_duty, end)
    for hold in holds:
        for category in categories:
            if hold.covers(customer_id, category):
                kept[category] = (f"legal hold: {hold.reason}", None)
    return kept


def held(holds: Iterable[Hold], customer_id: str, categories: Collection[str]) -> set[str]:
    return {c for c in categories for h in holds if h.covers(customer_id, c)}


def by_category(policies: Iterable[Policy]) -> Mapping[str, Policy]:
    return {p.category: p for p in policies}
