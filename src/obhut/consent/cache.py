"""The consent check in process: a decision from memory in a few microseconds, for the paths that check
consent per record in bulk (personalisation, exports), kept exact by dropping what a change touches.

- A change committed in this process drops the customer's entry in the commit itself (an `after_commit`
  hook on the sessions the index was built with), so the very next check reloads from the database.
- A change committed by another process reaches this one through PostgreSQL `NOTIFY` (sent once per
  transaction, on commit); the listener drops the entries it names. Until the listener is connected, and
  after it loses its connection, the index holds nothing and every check reads the database.
- What a load read is kept except what changed while it read: loads remember the generation they started
  in, and while any load is in flight, every change is journalled with its generation.
- On SQLite there is one process (`make run`); the `worker` writes no consent the index would hold wrong
  (expiry is decided from the stored end time), so the in-process hooks are enough.

The database check (`service.check`, `require`) stays the authority for a single use at the edge."""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from obhut.consent import rules
from obhut.consent.models import ConsentNotice, ConsentPurpose, ConsentState
from obhut.consent.rules import Decision, Kind, Latest, LegalBasis
from obhut.kit.clock import now

log = logging.getLogger("obhut.consent")
CHANNEL = "obhut_consent"
_CHANGES = "consent.changes"  # session.info: what this transaction changed, as (workspace, customer or "")
_NO_PURPOSE = Decision(allowed=False, reason=rules.UNKNOWN_PURPOSE)
_TIMELESS = datetime.min.replace(tzinfo=UTC)  # the time given for a decision that does not depend on it


def changed(session: Session, workspace_id: str, customer_id: str = "") -> None:
    """Marks a change for the indexes (every process's): a customer's consent, or ("") the workspace's
    catalogue. Called by the writers in the change's transaction."""
    session.info.setdefault(_CHANGES, set()).add((workspace_id, customer_id))


def _payloads(changes: Iterable[tuple[str, str]]) -> list[str]:
    """NOTIFY payloads of at most about 7,000 bytes (PostgreSQL's limit is 8,000): `ws customer` lines."""
    out, current = [], ""
    for workspace_id, customer_id in sorted(changes):
        line = f"{workspace_id} {customer_id}\n"
        if len(current) + len(line) > 7000:  # noqa: PLR2004
            out.append(current)
            current = ""
        current += line
    return [*out, current] if current else out


_COMMITTED = "consent.committed"  # what the transaction committing now changed, for the indexes' hooks


_PINNED = "consent.pinned"  # catalogue rows a transaction of appends keeps loaded


def pin(session: Session, row: object) -> None:
    """Holds a catalogue row until the transaction ends: the identity map keeps only rows somebody
    references, and a bulk of appends would otherwise load the same purpose and notice once per event."""
    session.info.setdefault(_PINNED, {})[id(row)] = row


@event.listens_for(Session, "before_commit")
def _notify(session: Session) -> None:
    """Tells the other processes (PostgreSQL delivers it only if this transaction commits), and hands the
    changes to this process's indexes, which read them once the commit is done. A savepoint is not the end."""
    if session.in_nested_transaction():
        return
    changes = session.info.pop(_CHANGES, None)
    session.info[_COMMITTED] = changes
    if changes and session.get_bind().dialect.name == "postgresql":
        for payload in _payloads(changes):
            session.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload})


@event.listens_for(Session, "after_transaction_end")
def _forget_transaction(session: Session, transaction: SessionTransaction) -> None:
    """When the outermost transaction ends (after the indexes' `after_commit`, or rolled back), what it
    changed and pinned goes with it; a savepoint's end changes nothing."""
    if transaction.parent is None:
        for key in (_CHANGES, _COMMITTED, _PINNED):
            session.info.pop(key, None)


# A customer's states are held as plain tuples (kind, until, major) in a dict of them: containers of plain
# values only, which Python's garbage collector stops tracking, so a million held customers add nothing to
# every collection's work. The common states (no end date) share one Latest each.
Held = tuple[str, datetime | None, int | None]
_SHARED: dict[Held, Latest] = {}


def _latest(held: Held) -> Latest:
    found = _SHARED.get(held)
    if found is None:
        found = Latest(Kind(held[0]), held[1], held[2])
        if held[1] is None and len(_SHARED) < 10_000:  # noqa: PLR2004 - kinds x notice majors in use
            _SHARED[held] = found
    return found


def terms(session: Session, workspace_id: str, keys: Collection[str]) -> dict[str, tuple[LegalBasis, int | None]]:
    """Per catalogued purpose: its legal basis and, for consent, the newest notice major a grant must name."""
    basis = session.execute(
        select(ConsentPurpose.key, ConsentPurpose.legal_basis).where(
            ConsentPurpose.workspace_id == workspace_id, ConsentPurpose.key.in_(sorted(keys))
        )
    ).all()
    majors = dict(
        session.execute(
            select(ConsentNotice.purpose_key, func.max(ConsentNotice.major))
            .where(ConsentNotice.workspace_id == workspace_id, ConsentNotice.purpose_key.in_(sorted(keys)))
            .group_by(ConsentNotice.purpose_key)
        ).all()
    )
    return {key: (LegalBasis(value), majors.get(key) if value == LegalBasis.CONSENT else None) for key, value in basis}


class ConsentIndex:
    def __init__(self, sessions: sessionmaker[Session], capacity: int = 1_000_000) -> None:
        self._sessions, self.capacity = sessions, capacity
        self._purposes: dict[tuple[str, str], tuple[LegalBasis, int | None]] = {}
        self._states: dict[tuple[str, str], dict[str, Held]] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self._loading = 0  # loads in flight; while there are any, changes are journalled
        self._journal: list[tuple[int, tuple[str, str]]] = []  # (generation, (workspace, customer, "" or "*"))
        self.active = True  # False while changes from other processes could be missed
        event.listen(sessions, "after_commit", self._after_commit)

    def decide(self, workspace_id: str, customer_id: str, purpose_key: str, at: datetime | None = None) -> Decision:
        """Whether the customer's data may be used for the purpose at `at` (now): the same decision as the
        database check, from memory once loaded."""
        about = self._purposes.get((workspace_id, purpose_key))
        if about is None:
            about = self._load_purpose(workspace_id, purpose_key)
            if about is None:
                return _NO_PURPOSE
        states = self._states.get((workspace_id, customer_id))
        if states is None:
            states = self._load_customer(workspace_id, customer_id)
        basis, major = about
        held, restriction = states.get(purpose_key), states.get(rules.RESTRICTION)
        if at is None:  # the rules read the time only against a consent's end: the clock is read only then
            at = now() if held is not None and held[1] is not None else _TIMELESS
        return rules.decide(basis, None if held is None else _latest(held), major, at, restriction and restriction[0])

    def allowed(self, workspace_id: str, customer_id: str, purpose_key: str) -> bool:
        return self.decide(workspace_id, customer_id, purpose_key).allowed

    # --- loading ------------------------------------------------------------------------------------------
    @contextmanager
    def _load(self) -> Iterator[int]:
        """Around a read from the database: the generation it started in. Changes are journalled meanwhile."""
        with self._lock:
            self._loading += 1
            generation = self._generation
        try:
            yield generation
        finally:
            with self._lock:
                self._loading -= 1
                if not self._loading:
                    self._journal.clear()

    def _stale(self, generation: int, workspace_id: str, customer_id: str) -> bool:
        """Whether the customer's states (customer "": the workspace's catalogue) may have changed since
        `generation`, so that what a load read of them must not be kept. The caller holds the lock."""
        if not self.active:
            return True
        if generation == self._generation:
            return False
        return any(
            when > generation and changed in ((workspace_id, customer_id), ("*", "*"))
            for when, changed in self._journal
        )

    def _keep(self, store: dict[tuple[str, str], Any], key: tuple[str, str], value: object) -> None:
        """Stores a loaded entry; the caller holds the lock and has checked it is not stale."""
        if len(store) >= self.capacity:
            del store[next(iter(store))]  # the oldest entry
        store[key] = value

    def _load_purpose(self, workspace_id: str, purpose_key: str) -> tuple[LegalBasis, int | None] | None:
        with self._load() as generation:  # what changed meanwhile is journalled until this block ends
            with self._sessions() as session:
                about = terms(session, workspace_id, [purpose_key]).get(purpose_key)
            with self._lock:
                if about is not None and not self._stale(generation, workspace_id, ""):
                    self._keep(self._purposes, (workspace_id, purpose_key), about)
        return about

    def _load_customer(self, workspace_id: str, customer_id: str) -> dict[str, Held]:
        query = select(ConsentState.purpose_key, ConsentState.kind, ConsentState.until, ConsentState.notice_major)
        query = query.where(ConsentState.workspace_id == workspace_id, ConsentState.customer_id == customer_id)
        with self._load() as generation:
            with self._sessions() as session:
                states = {key: (kind, until, major) for key, kind, until, major in session.execute(query)}
            with self._lock:
                if not self._stale(generation, workspace_id, customer_id):
                    self._keep(self._states, (workspace_id, customer_id), states)
        return states

    def warm(self, workspace_id: str, batch: int = 50_000) -> int:
        """Loads every stored state of the workspace, up to the capacity; how many customers it holds. A
        customer with no state is loaded on their first check; one whose consent changed while this read is
        left out (their next check loads them)."""
        loaded: dict[tuple[str, str], dict[str, Held]] = {}
        query = select(
            ConsentState.customer_id, ConsentState.purpose_key, ConsentState.kind, ConsentState.until,
            ConsentState.notice_major,
        ).where(ConsentState.workspace_id == workspace_id)  # fmt: skip
        with self._load() as generation:
            with self._sessions() as session:
                rows = session.execute(query.execution_options(yield_per=batch))
                for customer_id, key, kind, until, major in rows:
                    loaded.setdefault((workspace_id, customer_id), {})[key] = (kind, until, major)
            with self._lock:
                fresh = [(k, v) for k, v in loaded.items() if not self._stale(generation, *k)]
                room = max(0, self.capacity - len(self._states))
                self._states.update(fresh[:room])
        return min(len(loaded), len(self._states))

    # --- forgetting ------------------------------------------------------------------------------------------
    def forget(self, changes: Iterable[tuple[str, str]]) -> None:
        """Drops what changed: a customer's states, or (customer "") the workspace's catalogue entries."""
        with self._lock:
            self._generation += 1
            changes = list(changes)
            if self._loading:
                self._journal += [(self._generation, change) for change in changes]
            for workspace_id, customer_id in changes:
                if customer_id:
                    self._states.pop((workspace_id, customer_id), None)
                else:
                    for key in [k for k in self._purposes if k[0] == workspace_id]:
                        del self._purposes[key]

    def clear(self, *, active: bool) -> None:
        """Forgets everything; `active=False` keeps it empty (every check reads the database) until
        changes from other processes can be heard again."""
        with self._lock:
            self._generation += 1
            if self._loading:
                self._journal.append((self._generation, ("*", "*")))
            self._states.clear()
            self._purposes.clear()
            self.active = active

    def _after_commit(self, session: Session) -> None:
        changes = session.info.get(_COMMITTED)
        if changes:
            self.forget(changes)

    def __len__(self) -> int:
        return len(self._states)


HEARTBEAT_SECONDS = 2.0
_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 2}


class Listener(threading.Thread):
    """Hears the consent changes of other processes (PostgreSQL LISTEN) and drops them from the index. The
    index is active only while it listens: before, and after a lost connection, it keeps nothing."""

    def __init__(self, index: ConsentIndex, conninfo: str) -> None:
        super().__init__(name="obhut-consent-listener", daemon=True)
        self._index, self._conninfo = index, conninfo
        self._halt = threading.Event()
        self.listening = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                with psycopg.connect(make_conninfo(self._conninfo, **_KEEPALIVE), autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._index.clear(active=True)  # heard from now on: what it loads stays right
                    self.listening.set()
                    while not self._halt.is_set():
                        connection.execute("SELECT 1")  # a connection that died quietly raises here
                        for note in connection.notifies(timeout=HEARTBEAT_SECONDS):
                            self._index.forget(tuple(line.split(" ", 1)) for line in note.payload.splitlines())  # type: ignore[misc]
            except psycopg.Error as error:
                log.warning("consent index not listening (%s): checks read the database", type(error).__name__)
            finally:
                self.listening.clear()
                self._index.clear(active=False)
            self._halt.wait(1.0)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
