"""Long-running key work, in resumable batches that each commit on their own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from obhut.kit import collector
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.vault import repository
from obhut.vault.rules import VersionState
from obhut.vault.service import INDEX_SECRET, Vault

Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class RotationReport:
    workspace_id: str
    from_versions: list[int]
    to_version: int
    rewrapped: int
    resumed: bool


def rotate(
    vault: Vault,
    factory: sessionmaker[Session],
    workspace_id: str,
    *,
    imported_key: bytes | None = None,
    batch_size: int = 5000,
    progress: Progress | None = None,
) -> RotationReport:
    """Create a new key version and move every data key to it. Reads and writes go on meanwhile: new data
    keys are wrapped under the new version at once, and old ones stay readable until moved. Running it
    again after an interruption resumes the same rotation instead of starting another."""
    with collector.paused(), unit_of_work(factory) as session:  # 65,536 new shard keys
        retiring, target, resumed = begin(vault, session, workspace_id, imported_key)
    with unit_of_work(factory) as session:
        total = repository.count_data_keys_below(session, workspace_id, target)
    done, after = 0, ""
    if progress:
        progress(done, total)
    while True:
        with collector.paused(), unit_of_work(factory) as session:
            keyring = vault.open(session, workspace_id)
            rows = repository.data_keys_below(session, workspace_id, target, batch_size, after)
            if not rows:
                break
            done += vault.rewrap(keyring, rows, keyring.versions[target], session)
            after = rows[-1][0]
        if progress:
            progress(done, total)
    with unit_of_work(factory) as session:
        for version in repository.key_versions(session, workspace_id):
            if version.state == VersionState.RETIRING:
                version.state = VersionState.RETIRED.value
                version.retired_at = now()
    return RotationReport(workspace_id, retiring, target, done, resumed)


def begin(
    vault: Vault, session: Session, workspace_id: str, imported_key: bytes | None = None
) -> tuple[list[int], int, bool]:
    """A rotation's first step, in the caller's transaction: a new active key version, the old one retiring.
    With a rotation already under way, that one: (versions retiring, target version, whether it was resumed).
    The data keys move afterwards, in batches (`rotate`, or `resume_rotations` in the background)."""
    keyring = vault.open(session, workspace_id)
    retiring = [v.version for v in keyring.versions.values() if v.state == VersionState.RETIRING]
    if retiring:
        return retiring, max(keyring.versions), True
    active, target = keyring.active, keyring.active.version + 1
    index_secret = vault.unwrapped_secrets(active, [INDEX_SECRET])[INDEX_SECRET]
    vault.create_version(session, workspace_id, target, active.provider, imported_key, index_secret)
    repository.set_version_state(session, workspace_id, active.version, VersionState.RETIRING)
    return [active.version], target, False


@dataclass(frozen=True)
class RotationProgress:
    """How far the workspace's rotation is: data keys under the newest version (`done`) of all (`total`)."""

    rotating: bool
    from_versions: list[int]
    to_version: int
    done: int
    total: int


def progress_of(vault: Vault, session: Session, workspace_id: str) -> RotationProgress:
    versions = vault.status(session, workspace_id)
    target = max(v.version for v in versions)
    retiring = [v.version for v in versions if v.state == VersionState.RETIRING]
    total = sum(v.data_keys for v in versions)
    waiting = sum(v.data_keys for v in versions if v.version < target)
    return RotationProgress(bool(retiring), retiring, target, total - waiting, total)


def resume_rotations(vault: Vault, factory: sessionmaker[Session], progress: Progress | None = None) -> int:
    """Finishes every rotation a stop interrupted (a version still retiring); how many data keys moved."""
    with factory() as session:
        workspaces = repository.workspaces_rotating(session)
    return sum(rotate(vault, factory, w, progress=progress).rewrapped for w in workspaces)
