"""Data-subject requests from intake to answer: received (identity not yet verified: nothing is released),
verified, then completed by doing what the right asks, or rejected; the deadline, its one extension, and
reminders. Never commits: the caller's unit of work does."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from obhut.consent import restrictions
from obhut.consent import service as consent
from obhut.consent.models import ConsentPurpose
from obhut.consent.rules import Channel, Kind, LegalBasis, Restriction
from obhut.customers.models import Customer
from obhut.customers.service import CustomerService
from obhut.kit.clock import now
from obhut.kit.errors import FieldError, NotFoundError, ValidationFailedError
from obhut.kit.ids import is_valid_id, new_id
from obhut.rights import erasure, export, rules
from obhut.rights.ledger import ErasureLedger
from obhut.rights.models import SubjectRequest
from obhut.rights.ports import Subject
from obhut.rights.registry import Registry
from obhut.rights.rules import Right, Status
from obhut.vault.keyring import Keyring

DETAILS = "rights-details"
EXTENSION = "rights-extension"


class RightsService:
    def __init__(self, customers: CustomerService, registry: Registry, ledger: ErasureLedger) -> None:
        self.customers, self.registry, self.ledger = customers, registry, ledger

    # --- intake -------------------------------------------------------------------------------------------
    def open(
        self,
        session: Session,
        keyring: Keyring,
        customer_id: str,
        right: Right,
        *,
        requested_by: str,
        language: str = "en",
        details: Mapping[str, Any] | None = None,
        verified_by: str | None = None,
    ) -> SubjectRequest:
        """Takes a request in; `verified_by` (a method such as "signed-link") when the requester proved who
        they are on the way in. Rectification details are validated now, so a bad value is refused at once."""
        workspace_id = keyring.workspace_id
        customer = session.get(Customer, (workspace_id, customer_id)) if is_valid_id(customer_id) else None
        if customer is None or customer.erased_at is not None:
            raise NotFoundError(f"no customer {customer_id} in workspace '{workspace_id}'")
        if right is Right.RECTIFICATION:
            fields = (details or {}).get("fields")
            if not isinstance(fields, dict) or not fields:
                _refuse("details", 'a rectification names the fields to correct: {"fields": {"email": ...}}')
            self.customers.validate(session, workspace_id, fields, partial=True)
        received = now()
        request = SubjectRequest(
            workspace_id=workspace_id, request_id=new_id(), customer_id=customer_id, right=right.value,
            status=Status.RECEIVED.value, channel="customer" if requested_by == "customer" else "staff",
            requested_by=requested_by, language=language, received_at=received, deadline=rules.deadline(received),
            outcome="",
        )  # fmt: skip
        if details:
            request.details_sealed = keyring.subject(customer_id).seal(DETAILS, json.dumps(details).encode())
        session.add(request)
        if verified_by is not None:
            self._mark_verified(request, requested_by, verified_by)
        session.flush()
        return request

    def get(self, session: Session, workspace_id: str, request_id: str) -> SubjectRequest:
        found = session.get(SubjectRequest, (workspace_id, request_id)) if is_valid_id(request_id) else None
        if found is None:
            raise NotFoundError(f"no request {request_id} in workspace '{workspace_id}'")
        return found

    def listing(
        self, session: Session, workspace_id: str, status: Status | None = None, customer_id: str | None = None
    ) -> list[SubjectRequest]:
        query = select(SubjectRequest).where(SubjectRequest.workspace_id == workspace_id)
        if status is not None:
            query = query.where(SubjectRequest.status == status.value)
        if customer_id is not None:
            query = query.where(SubjectRequest.customer_id == customer_id)
        return list(session.scalars(query.order_by(SubjectRequest.deadline)))

    # --- steps ----------------------------------------------------------------------------------------------
    def verify(self, session: Session, request: SubjectRequest, by: str, method: str) -> SubjectRequest:
        rules.require(Status(request.status), "verify")
        self._mark_verified(request, by, method)
        session.flush()
        return request

    @staticmethod
    def _mark_verified(request: SubjectRequest, by: str, method: str) -> None:
        request.status, request.verified_at, request.verified_by, request.verification = (
            Status.VERIFIED.value, now(), by, method
        )  # fmt: skip

    def extend(self, session: Session, keyring: Keyring, request: SubjectRequest, months: int, reason: str) -> None:
        rules.require(Status(request.status), "extend")
        already = request.extension_sealed is not None
        request.deadline = rules.extended(request.received_at, months, reason, already)
        request.extension_sealed = keyring.subject(request.customer_id).seal(EXTENSION, reason.encode())
        session.flush()

    def reject(self, session: Session, request: SubjectRequest, reason: str) -> None:
        """Refuses a request (manifestly unfounded, or the requester could not be verified); `reason` is a
        short statement without personal data, which the requester is told."""
        rules.require(Status(request.status), "reject")
        request.status, request.completed_at, request.outcome = Status.REJECTED.value, now(), reason
        session.flush()

    def details(self, keyring: Keyring, request: SubjectRequest) -> dict[str, Any]:
        if request.details_sealed is None:
            return {}
        found: dict[str, Any] = json.loads(keyring.subject(request.customer_id).open(DETAILS, request.details_sealed))
        return found

    def release_export(self, session: Session, keyring: Keyring, request: SubjectRequest) -> bytes:
        """The ZIP for an access or portability request, for its verified requester only; completes it."""
        if request.right not in (Right.ACCESS, Right.PORTABILITY):
            _refuse("right", f"a {request.right} request has no export; only access and portability do")
        rules.require(Status(request.status), "release")
        subject = Subject(session, keyring, keyring.workspace_id, request.customer_id, request.language)
        bundle = export.archive(self.registry, subject)
        if request.status != Status.COMPLETED:
            request.status, request.completed_at, request.outcome = Status.COMPLETED.value, now(), "export released"
        session.flush()
        return bundle

    def complete(self, session: Session, keyring: Keyring, request: SubjectRequest, actor: str) -> SubjectRequest:
        """Does what the right asks. Access and portability complete when their export is released."""
        rules.require(Status(request.status), "complete")
        right, workspace_id, customer_id = Right(request.right), keyring.workspace_id, request.customer_id
        if right in (Right.ACCESS, Right.PORTABILITY):
            _refuse("right", "an access or portability request completes when its export is downloaded")
        if right is Right.RECTIFICATION:
            fields = self.details(keyring, request)["fields"]
            self.customers.update(session, workspace_id, customer_id, fields)
            request.outcome = f"corrected: {', '.join(sorted(fields))}"
        elif right is Right.ERASURE:
            certificate = erasure.erase(
                session, keyring, self.registry, self.ledger, customer_id,
                request_id=request.request_id, language=request.language,
            )  # fmt: skip
            request.certificate = certificate.token
            kept = certificate.claims["kept"]
            request.outcome = "erased" + (f"; kept: {'; '.join(k['what'] for k in kept)}" if kept else "")
        elif right is Right.RESTRICTION:
            restrictions.restrict(session, workspace_id, customer_id, Restriction.RESTRICTED)
            request.outcome = "restricted to storage and legal obligations (Art. 18)"
        else:
            purposes = self._objected(session, workspace_id, self.details(keyring, request).get("purposes"))
            for key in purposes:
                change = consent.Change(key, Kind.OBJECTED, Channel.API, actor, language=request.language)
                consent.append(session, keyring, workspace_id, customer_id, change)
            request.outcome = f"objection recorded for: {', '.join(purposes) or 'no purpose'}"
        request.status, request.completed_at = Status.COMPLETED.value, now()
        session.flush()
        return request

    @staticmethod
    def _objected(session: Session, workspace_id: str, named: list[str] | None) -> list[str]:
        """The purposes an objection covers: those named, or every legitimate-interest and consent purpose."""
        query = select(ConsentPurpose.key, ConsentPurpose.legal_basis).where(
            ConsentPurpose.workspace_id == workspace_id
        )
        catalogue: dict[str, str] = {key: basis for key, basis in session.execute(query)}
        if named:
            unknown = [key for key in named if key not in catalogue]
            if unknown:
                _refuse("purposes", f"unknown purposes: {', '.join(unknown)}")
            return sorted(named)
        open_to = {LegalBasis.LEGITIMATE_INTEREST.value, LegalBasis.CONSENT.value}
        return sorted(key for key, basis in catalogue.items() if basis in open_to)

    def due_reminders(self, session: Session, workspace_id: str) -> list[SubjectRequest]:
        """Open requests whose deadline is a week away or has passed, not yet reminded of; marks them."""
        at, due = now(), []
        for request in self.listing(session, workspace_id):
            if request.status in (Status.RECEIVED, Status.VERIFIED) and rules.needs_reminder(
                request.deadline, at, request.reminded_at
            ):
                request.reminded_at = at
                due.append(request)
        session.flush()
        return due


def _refuse(field: str, message: str) -> NoReturn:
    raise ValidationFailedError([FieldError(field, message, "invalid")])
