"""Retention policies, legal holds, the purge's dry run, and the contract end a period can count from.
Changes need `rights:manage` and are in the access log."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from obhut.access.dependencies import CurrentPrincipal
from obhut.access.rules import Permission
from obhut.audit import rules as audit
from obhut.audit.dependencies import AuditTrail
from obhut.audit.service import Event
from obhut.container import container_of
from obhut.kit.web import DbSession
from obhut.retention import backups, purge, service
from obhut.retention.models import LegalHold
from obhut.retention.rules import Action, Anchor, Policy

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["retention"])


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(ge=1, le=36600, description="How long the category is kept after the anchor")
    anchor: Anchor = Field(description="What the period counts from")
    action: Action = Field(description="What happens at its end")
    legal_duty: str = Field(default="", max_length=200, description='The law that requires keeping it: "AO §147"')


class PolicyOut(PolicyIn):
    category: str


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str | None = None
    category: str | None = None
    reason: str = Field(min_length=3, max_length=200, description="A case reference, not a person's details")


class HoldOut(HoldIn):
    id: str
    created_at: datetime

    @classmethod
    def of(cls, row: LegalHold) -> HoldOut:
        return cls(id=row.hold_id, customer_id=row.customer_id, category=row.category, reason=row.reason,
                   created_at=row.created_at)  # fmt: skip


class RetentionOut(BaseModel):
    policies: list[PolicyOut]
    holds: list[HoldOut]


class PurgeReportOut(BaseModel):
    examined: int
    would_erase: int
    would_clear: int
    held: int
    by_category: dict[str, int] = Field(description="category:action -> customers")
    first: list[str] = Field(description="The first customers it would act on, by id")


class ContractEndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ended_at: datetime | None = Field(description="When the contract ended; null while it runs")


class BackupOut(BaseModel):
    folder: str = Field(description="The backup's folder, as `obhut backup verify|restore` take it")
    size: int = Field(description="Bytes on disk")
    id: str | None
    created_at: datetime | None
    obhut_version: str | None
    provider: str | None
    databases: list[backups.DatabaseFile]
    problem: str = Field(default="", description="Why the manifest could not be read; empty when it could")

    @classmethod
    def of(cls, found: backups.Found) -> BackupOut:
        manifest = found.manifest
        if manifest is None:
            return cls(folder=str(found.path), size=found.size, id=None, created_at=None, obhut_version=None,
                       provider=None, databases=[], problem=found.problem)  # fmt: skip
        return cls(
            folder=str(found.path), size=found.size, id=manifest.backup_id,
            created_at=datetime.fromisoformat(manifest.created_at), obhut_version=manifest.obhut_version,
            provider=manifest.provider, databases=list(manifest.databases),
        )  # fmt: skip


class BackupsOut(BaseModel):
    directory: str = Field(description="The configured backup folder (OBHUT_BACKUP_DIR)")
    backups: list[BackupOut]


def _record(trail: AuditTrail, verb: str, target: str) -> None:
    trail.record(Event(audit.action("api", "retention", verb), target=target))


@router.get("/retention")
def read_retention(workspace_id: str, session: DbSession, principal: CurrentPrincipal) -> RetentionOut:
    principal.require(Permission.RIGHTS_MANAGE)
    return RetentionOut(
        policies=[
            PolicyOut(category=p.category, days=p.days, anchor=p.anchor, action=p.action, legal_duty=p.legal_duty)
            for p in service.policies(session, workspace_id)
        ],
        holds=[HoldOut.of(h) for h in service.hold_rows(session, workspace_id)],
    )


@router.put("/retention/policies/{category}")
def set_policy(
    workspace_id: str, category: str, body: PolicyIn, session: DbSession, principal: CurrentPrincipal,
    trail: AuditTrail,
) -> PolicyOut:  # fmt: skip
    principal.require(Permission.RIGHTS_MANAGE)
    policy = Policy(category, body.days, body.anchor, body.action, body.legal_duty)
    service.set_policy(session, workspace_id, policy, principal.actor)
    _record(trail, "policy-set", f"retention:{category}")
    return PolicyOut(category=category, **body.model_dump())


@router.delete("/retention/policies/{category}", status_code=status.HTTP_204_NO_CONTENT)
def remove_policy(
    workspace_id: str, category: str, session: DbSession, principal: CurrentPrincipal, trail: AuditTrail
) -> Response:
    principal.require(Permission.RIGHTS_MANAGE)
    service.remove_policy(session, workspace_id, category)
    _record(trail, "policy-remove", f"retention:{category}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/retention/holds", status_code=status.HTTP_201_CREATED)
def add_hold(
    workspace_id: str, body: HoldIn, session: DbSession, principal: CurrentPrincipal, trail: AuditTrail
) -> HoldOut:
    """Stops deletion (purges and erasures) of a customer's data, a category, or both, until released."""
    principal.require(Permission.RIGHTS_MANAGE)
    hold = service.add_hold(session, workspace_id, body.customer_id, body.category, body.reason, principal.actor)
    trail.record(
        Event(audit.action("api", "retention", "hold"), customer_id=body.customer_id, target=f"hold:{hold.hold_id}")
    )
    return HoldOut.of(hold)


@router.delete("/retention/holds/{hold_id}", status_code=status.HTTP_204_NO_CONTENT)
def release_hold(
    workspace_id: str, hold_id: str, session: DbSession, principal: CurrentPrincipal, trail: AuditTrail
) -> Response:
    principal.require(Permission.RIGHTS_MANAGE)
    service.release_hold(session, workspace_id, hold_id)
    _record(trail, "hold-release", f"hold:{hold_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/retention/purge")
def purge_dry_run(workspace_id: str, session: DbSession, principal: CurrentPrincipal) -> PurgeReportOut:
    """What a purge would do now, without doing it (`obhut retention purge` does it)."""
    principal.require(Permission.RIGHTS_MANAGE)
    report = purge.dry_run(session, workspace_id)
    return PurgeReportOut(
        examined=report.examined, would_erase=report.erase, would_clear=report.clear, held=report.held,
        by_category=dict(report.by_category), first=[d.customer_id for d in report.customers],
    )  # fmt: skip


@router.put("/customers/{customer_id}/contract-end")
def set_contract_end(
    workspace_id: str, customer_id: str, body: ContractEndIn, session: DbSession, principal: CurrentPrincipal,
    trail: AuditTrail,
) -> ContractEndIn:  # fmt: skip
    """Records the end of the customer's contract: retention periods may count from it."""
    principal.require(Permission.CUSTOMERS_WRITE)
    service.set_contract_end(session, workspace_id, customer_id, body.ended_at)
    trail.record(Event(audit.action("api", "customer", "contract-end"), customer_id=customer_id))
    return body


@router.get("/backups")
def list_backups(request: Request, principal: CurrentPrincipal) -> BackupsOut:
    """The backups in the configured backup folder, newest first, from their manifests (the wrapped key
    left out). Read only: `obhut backup create|verify|restore` make, check and restore them."""
    principal.require(Permission.RIGHTS_MANAGE)
    folder = container_of(request).settings.resolved_backup_dir
    return BackupsOut(directory=str(folder), backups=[BackupOut.of(found) for found in backups.listing(folder)])
