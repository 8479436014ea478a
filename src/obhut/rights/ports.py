"""What every domain that stores data about a customer provides to answer their rights: a handler that
exports what it holds and erases it (or says what it must keep and why). The registry (`registry.py`) holds
one per domain; a test fails when a table with customer data is covered by none."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from obhut.vault.keyring import Keyring


@dataclass(frozen=True)
class Subject:
    """The customer a request is about, and what a handler needs to answer for them."""

    session: Session
    keyring: Keyring
    workspace_id: str
    customer_id: str
    language: str = "en"

    def __repr__(self) -> str:
        return f"Subject({self.workspace_id!r}, {self.customer_id!r})"


@dataclass(frozen=True)
class Batch:
    """Customers erased together by a purge."""

    session: Session
    keyring: Keyring
    workspace_id: str
    customer_ids: Sequence[str]
    rows_go: frozenset[str] = frozenset()  # whose rows the purge deletes next: a handler need not clear them first

    def __repr__(self) -> str:
        return f"Batch({self.workspace_id!r}, {len(self.customer_ids)} customers)"


@dataclass(frozen=True)
class Kept:
    """Data an erasure had to keep: what, why (the law or the hold), and until when."""

    what: str
    why: str
    until: datetime | None = None


@dataclass
class Outcome:
    """One domain's part of an erasure."""

    domain: str
    erased: list[str] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)


@dataclass(frozen=True)
class Retained:
    """Categories of the customer's data a retention duty or a legal hold keeps from erasure, with why."""

    categories: dict[str, Kept] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.categories)


class SubjectHandler(Protocol):
    """A domain's answer to data-subject requests."""

    domain: str
    tables: frozenset[str]  # the tables with data about a customer that this handler exports and erases

    def export(self, subject: Subject) -> dict[str, Any]:
        """Everything the domain holds about the customer, as JSON-ready values (decrypted, for them)."""
        ...

    def erase(self, subject: Subject, retained: Retained) -> Outcome:
        """Erases what the domain holds about the customer, except what `retained` keeps; never commits."""
        ...

    def erase_all(self, batch: Batch) -> None:
        """`erase` for many customers at once, keeping nothing (a retention purge: every period has ended and
        no hold names them), in a few statements rather than a few per customer."""
        ...
