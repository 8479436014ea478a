"""A workspace's keys over HTTP, for key managers: start a rotation and follow it, revoke every key.
Rotation starts here (a new key version, in this request); its data keys are re-wrapped afterwards in
resumable batches by the background job that finishes rotations (`resume_rotations`), as `obhut keys rotate`
would. Revocation disables the root keys in their provider: no personal data of the workspace can be read or
written until the key administrator restores them (`obhut keys restore`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field

from obhut.access.dependencies import CurrentPrincipal
from obhut.access.rules import Permission
from obhut.audit.dependencies import AuditTrail
from obhut.audit.rules import action
from obhut.audit.service import Event
from obhut.container import container_of
from obhut.kit.errors import ConflictError, FieldError, ValidationFailedError
from obhut.kit.web import DbSession
from obhut.vault import tasks
from obhut.vault.service import Vault

router = APIRouter(prefix="/workspaces/{workspace_id}/keys", tags=["keys"])


class RotationOut(BaseModel):
    rotating: bool = Field(description="Whether data keys are still being moved to the newest version")
    from_versions: list[int] = Field(description="The versions being retired")
    to_version: int
    done: int = Field(description="Data keys under the newest version")
    total: int = Field(description="All data keys of the workspace")

    @classmethod
    def of(cls, progress: tasks.RotationProgress) -> RotationOut:
        return cls(
            rotating=progress.rotating,
            from_versions=progress.from_versions,
            to_version=progress.to_version,
            done=progress.done,
            total=progress.total,
        )


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirm: str = Field(max_length=63, description="The workspace id, typed out: revocation stops every read")


class RevokedOut(BaseModel):
    revoked: list[str] = Field(description="The root keys disabled in their provider")


def _vault(request: Request) -> Vault:
    return container_of(request).vault


@router.post("/rotate", status_code=status.HTTP_202_ACCEPTED)
def start_rotation(
    workspace_id: str, request: Request, session: DbSession, principal: CurrentPrincipal, trail: AuditTrail
) -> RotationOut:
    """A new key version wraps new data keys at once; the existing ones move to it in the background.
    Follow it with GET .../keys/rotation."""
    principal.require(Permission.KEYS_MANAGE)
    vault = _vault(request)
    from_versions, target, under_way = tasks.begin(vault, session, workspace_id)
    if under_way:
        retiring = ", v".join(map(str, from_versions))
        raise ConflictError(
            f"a rotation from v{retiring} to v{target} is under way; its data keys are re-wrapped in the "
            "background (GET .../keys/rotation shows how far)"
        )
    trail.record(Event(action("api", "key", "rotate"), target=f"key:v{target}"))
    session.flush()
    return RotationOut.of(tasks.progress_of(vault, session, workspace_id))


@router.get("/rotation")
def rotation_progress(
    workspace_id: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> RotationOut:
    principal.require(Permission.KEYS_MANAGE)
    return RotationOut.of(tasks.progress_of(_vault(request), session, workspace_id))


@router.post("/revoke")
def revoke(
    workspace_id: str,
    body: RevokeIn,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
) -> RevokedOut:
    """Disables every root key of the workspace; `confirm` must be the workspace id."""
    principal.require(Permission.KEYS_MANAGE)
    if body.confirm.strip() != workspace_id:
        raise ValidationFailedError(
            [FieldError("confirm", "type the workspace id exactly to confirm the revocation", "confirmation")]
        )
    vault = _vault(request)
    if any(v.revoked_at is not None for v in vault.status(session, workspace_id)):
        raise ConflictError(f"the keys of workspace '{workspace_id}' are revoked already")
    versions = vault.revoke(session, workspace_id)
    trail.record(Event(action("api", "key", "revoke"), target=f"key:{versions[-1].key_ref}"))
    return RevokedOut(revoked=[v.key_ref for v in versions])
