from __future__ import annotations

from datetime import datetime
from http import HTTPStatus

from obhut.kit.errors import GoneError, NotFoundError, ObhutError


class KeyRevokedError(ObhutError):
    status = HTTPStatus.LOCKED
    kind = "key-revoked"
    title = "Workspace key revoked"

    def __init__(self, workspace_id: str, key_ref: str, revoked_at: datetime) -> None:
        super().__init__(
            f"key '{key_ref}' of workspace '{workspace_id}' was revoked on "
            f"{revoked_at:%Y-%m-%d %H:%M} UTC; no personal data of this workspace can be read or written "
            "until your key administrator restores it ('obhut keys restore')"
        )


class SubjectShreddedError(GoneError):
    kind = "shredded"
    title = "Data erased"

    def __init__(self, subject_id: str, shredded_at: datetime | None) -> None:
        when = f" on {shredded_at:%Y-%m-%d %H:%M} UTC" if shredded_at else ""
        super().__init__(
            f"the data key of customer {subject_id} was destroyed{when}; its personal data is unrecoverable by design"
        )


class WorkspaceKeysMissingError(NotFoundError):
    kind = "no-workspace-key"
    title = "Workspace has no key"

    def __init__(self, workspace_id: str) -> None:
        super().__init__(
            f"workspace '{workspace_id}' does not exist or has no key; create it with 'obhut workspaces create'"
        )
