from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

SecretId = tuple[str, int, int]  # kind, slot, generation


@dataclass
class _Entry:
    expires_at: float
    secrets: dict[SecretId, bytes] = field(default_factory=dict)
    floor: dict[tuple[str, int], int] = field(default_factory=dict)  # below it, destroyed: never held again


class KeyCache:
    """Unwrapped shard and index keys of one workspace key version, kept briefly in this process so that
    bulk work costs one provider call per batch instead of one per record. Each is read when first needed (a
    version may have 65,536 shards, so an entry is changed in place, never copied). Revocation drops them."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[tuple[str, int], _Entry] = {}
        self._newest: dict[str, int] = {}  # the newest version held, by workspace
        self._lock = threading.Lock()

    def get(self, workspace_id: str, version: int) -> dict[SecretId, bytes] | None:
        entry = self._entries.get((workspace_id, version))
        if entry is None or entry.expires_at < time.monotonic():
            return None
        return entry.secrets

    def add(self, workspace_id: str, version: int, secrets: Mapping[SecretId, bytes]) -> None:
        """Holds `secrets` (read from the key store) beside those of the version already held; an entry expired
        starts afresh. A generation older than one a committed move made live is not held (it is destroyed)."""
        with self._lock:
            entry = self._entries.get((workspace_id, version))
            if entry is None or entry.expires_at < time.monotonic():
                entry = self._entries[(workspace_id, version)] = _Entry(time.monotonic() + self._ttl)
            floor = entry.floor
            entry.secrets.update((i, key) for i, key in secrets.items() if i[2] >= floor.get(i[:2], 0))
            self._newest[workspace_id] = max(version, self._newest.get(workspace_id, version))

    def moved(self, workspace_id: str, version: int, secrets: Mapping[SecretId, bytes]) -> None:
        """A committed move made these generations live: the older ones of their slots are let go and never held
        again; these are held where the version is (an entry dropped meanwhile, by a revocation, stays dropped)."""
        with self._lock:
            entry = self._entries.get((workspace_id, version))
            if entry is None:
                return
            for (kind, slot, generation), key in secrets.items():
                below = entry.floor.get((kind, slot), 0)  # nothing older than the floor is held
                if generation < below:  # a later move is known already
                    continue
                for old in range(below, generation):
                    entry.secrets.pop((kind, slot, old), None)
                entry.floor[(kind, slot)] = generation
                entry.secrets[(kind, slot, generation)] = key

    def newest(self, workspace_id: str) -> dict[SecretId, bytes] | None:
        """The secrets of the newest version of the workspace held here (if not expired)."""
        version = self._newest.get(workspace_id)
        return None if version is None else self.get(workspace_id, version)

    def drop(self, workspace_id: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == workspace_id]:
                del self._entries[key]
            self._newest.pop(workspace_id, None)

    def __repr__(self) -> str:
        return f"KeyCache({len(self._entries)} versions)"
