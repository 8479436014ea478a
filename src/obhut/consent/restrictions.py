"""A customer's standing restriction (GDPR Art. 18, or what an erasure had to keep): held as their consent
state for the purpose `*`, so that the one consent check (`service.check`, the batch check and the
in-process index) refuses every purpose but legal obligations, on the very next request."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from obhut.consent import cache
from obhut.consent.models import ConsentState
from obhut.consent.rules import RESTRICTION, Restriction
from obhut.kit import bulk
from obhut.kit.ids import new_id
from obhut.outbox import service as outbox


def restriction_of(session: Session, workspace_id: str, customer_id: str) -> Restriction | None:
    state = session.get(ConsentState, (workspace_id, customer_id, RESTRICTION))
    return None if state is None else Restriction(state.kind)


def held(session: Session, workspace_id: str, customer_ids: Collection[str]) -> set[str]:
    """Which of the customers are restricted (or kept only for legal duties after an erasure)."""
    query = select(ConsentState.customer_id).where(
        ConsentState.workspace_id == workspace_id,
        ConsentState.purpose_key == RESTRICTION,
        ConsentState.customer_id.in_(sorted(customer_ids)),
    )
    return set(session.scalars(query)) if customer_ids else set()


def restrict(session: Session, workspace_id: str, customer_id: str, kind: Restriction, *, tell: bool = True) -> None:
    """Restricts all of the customer's data; `tell`: recipients hear it through the outbox (Art. 19)."""
    state = session.get(ConsentState, (workspace_id, customer_id, RESTRICTION))
    if state is None:
        state = ConsentState(workspace_id=workspace_id, customer_id=customer_id, purpose_key=RESTRICTION)
        session.add(state)
    state.kind, state.until, state.notice_major, state.event_id = kind.value, None, None, new_id()
    session.flush()
    cache.changed(session, workspace_id, customer_id)
    if tell:
        outbox.emit(session, workspace_id, "customer.restricted", customer_id=customer_id, data={"kind": kind.value})


def forget(session: Session, workspace_id: str, customer_ids: Sequence[str]) -> None:
    """Drops erased customers' restrictions with their rows (a deletion): nothing is left to restrict."""
    for chunk in bulk.chunks(customer_ids):
        session.execute(
            delete(ConsentState).where(
                ConsentState.workspace_id == workspace_id,
                ConsentState.purpose_key == RESTRICTION,
                ConsentState.customer_id.in_(chunk),
            )
        )
        for customer_id in chunk:
            cache.changed(session, workspace_id, customer_id)
