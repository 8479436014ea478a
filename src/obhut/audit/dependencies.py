"""The request's trail: every endpoint that touches personal data, credentials or policy records through
it, in the request's own transaction. Entries carry who (principal), from where (address, user agent,
request id) and why (purpose, ticket)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from obhut.access.dependencies import CurrentPrincipal
from obhut.access.policies import FIELD_CATEGORIES
from obhut.access.rules import ReadPlan
from obhut.access.service import Principal
from obhut.audit import rules, service
from obhut.audit.service import Context, Event
from obhut.container import container_of
from obhut.kit.db import unit_of_work
from obhut.kit.errors import ObhutError
from obhut.kit.ids import is_valid_id, new_id
from obhut.kit.web import DbSession
from obhut.vault.keyring import Keyring
from obhut.vault.service import Vault

log = logging.getLogger("obhut.audit")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class Trail:
    """Pass the keyring the request already opened where there is one: the entry is sealed with the
    customer's data key, which that keyring then holds already."""

    def __init__(self, session: Session, vault: Vault, workspace_id: str, context: Context) -> None:
        self._session = session
        self._vault = vault
        self.workspace_id = workspace_id
        self.context = context

    def record(self, event: Event, keyring: Keyring | None = None) -> None:
        if keyring is None and (event.customer_id is not None or event.search_term is not None):
            keyring = self._vault.open(self._session, self.workspace_id)
        service.record(self._session, keyring, self.workspace_id, self.context, event)

    def viewed(
        self,
        verb: str,
        plan: ReadPlan,
        disclosures: Sequence[tuple[str, dict[str, str]]],
        *,
        search: tuple[str, str] | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        """A read or search: one entry per customer shown (or one for a search that found nobody)."""
        kind, term = search if search is not None else (None, None)
        base = Event(
            rules.action("api", "customer", verb),
            requested=sorted(plan.decisions),
            purpose=plan.purpose,
            ticket=plan.ticket,
            search_kind=kind,
            search_term=term,
            count=len(disclosures),
        )
        if not disclosures:
            self.record(base, keyring)
        for customer_id, disclosure in disclosures:
            shown = [f for f, how in disclosure.items() if how != "withheld"]
            categories = [FIELD_CATEGORIES[f] for f in shown if f in FIELD_CATEGORIES]
            outcome = rules.outcome_of(disclosure)
            event = replace(base, outcome=outcome, customer_id=customer_id, categories=categories, returned=disclosure)
            self.record(event, keyring)


def context_of(request: Request, actor: str, role: str) -> Context:
    given = request.headers.get("x-request-id", "")
    return Context(
        actor=actor,
        role=role,
        address=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", ""),
        request_id=given if _REQUEST_ID.fullmatch(given) else new_id(),
    )


def trail_for(request: Request, session: Session, workspace_id: str, actor: str, role: str) -> Trail:
    """A trail for a request that has no principal yet (a sign-in)."""
    return Trail(session, container_of(request).vault, workspace_id, context_of(request, actor, role))


def record_apart(request: Request, workspace_id: str, event: Event, context: Context | None = None) -> None:
    """An event of a request that fails (a refused sign-in, a denied search), in a transaction of its own:
    the request's own is rolled back. Without a context the caller is anonymous. A term (the account name
    tried, the value searched for) is kept as a keyed hash only."""
    container = container_of(request)
    with unit_of_work(container.sessions) as session:
        try:
            keyring: Keyring | None = container.vault.open(session, workspace_id)
        except ObhutError:  # an unknown workspace, or revoked keys: the attempt is still recorded
            keyring, event = None, replace(event, search_term=None, customer_id=None)
        service.record(session, keyring, workspace_id, context or context_of(request, "anonymous", ""), event)


def record_refused_read(request: Request, principal: Principal, purpose: str | None, ticket: str | None) -> None:
    """A read of personal data the plan refused (an unknown purpose, a missing ticket, no permission): denied,
    with the purpose as given (cut to 40 characters) and the customer the path names, if any. Recording must
    not hide the refusal: a failure here is logged and the refusal answered as it would have been."""
    customer_id = request.path_params.get("customer_id")
    event = Event(
        rules.action("api", "customer", "read"),
        "denied",
        customer_id=customer_id if isinstance(customer_id, str) and is_valid_id(customer_id) else None,
        purpose=purpose[:40] if purpose else None,
        ticket=ticket,
    )
    try:
        record_apart(request, principal.workspace_id, event, context_of(request, principal.actor, principal.role))
    except Exception as error:  # noqa: BLE001 - the refusal is what the caller must get
        log.warning("a refused read was not recorded: %s", type(error).__name__)


def _trail(request: Request, session: DbSession, principal: CurrentPrincipal) -> Trail:
    return trail_for(request, session, principal.workspace_id, principal.actor, principal.role)


AuditTrail = Annotated[Trail, Depends(_trail)]
