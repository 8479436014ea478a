"""The port each database engine plugs into for backups: copy out consistently, prove a copy restores,
put a copy back."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Protocol

from obhut.kit.errors import ObhutError


class BackupError(ObhutError):
    """A backup could not be made, checked or restored; the message names the file or database."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    kind = "backup-failed"
    title = "Backup failed"


@dataclass(frozen=True)
class Inspection:
    """What a restored copy holds: its alembic revision (None: no schema) and each table's row count."""

    revision: str | None
    row_counts: dict[str, int]


class DatabaseEngine(Protocol):
    kind: str
    """'sqlite' or 'postgresql', as written in the manifest."""

    def revision(self) -> str | None:
        """The live database's alembic revision."""

    def dump(self, target: Path) -> None:
        """A consistent copy of the live database into `target` (a new file), taken while it is in use."""

    def inspect(self, dump: Path, label: str) -> Inspection:
        """Prove `dump` restores (into a scratch copy named after `label`) and say what it holds; raises
        BackupError if it does not."""

    def restore(self, dump: Path) -> None:
        """Replace the live database's content with `dump` (all or nothing where the engine allows)."""
