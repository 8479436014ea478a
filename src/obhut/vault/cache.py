from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

SecretId = tuple[str, int, int]  # kind, slot, generation


@dataclass
class _Entry:
    expires_at: float
    secrets: dict[SecretId, bytes] = field(default_factory=dict)


class KeyCache:
    """Unwrapped shard and index keys of one workspace key version, kept briefly in this process so that
    bulk work costs one provider call per batch instead of one per record. Each is read when first needed (a
    version may have tens of thousands of shards). Revocation drops them."""

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

    def add(self, workspace_id: str, version: int, secrets: Mapping[SecretId, bytes]) -> dict[SecretId, bytes]:
        """Holds `secrets` beside those of the version already held (an entry expired starts afresh); an older
        generation of a slot they bring is let go (it was moved). Answers what the version now holds."""
        with self._lock:
            entry = self._entries.get((workspace_id, version))
            if entry is None or entry.expires_at < time.monotonic():
                entry = _Entry(time.monotonic() + self._ttl)
            newest: dict[tuple[str, int], int] = {}
            for kind, slot, generation in secrets:
                newest[(kind, slot)] = max(generation, newest.get((kind, slot), generation))
            held = dict(entry.secrets)  # a copy: a request may add a derived key to it meanwhile
            kept = {i: key for i, key in held.items() if i[2] >= newest.get((i[0], i[1]), i[2])}
            kept.update(secrets)
            self._entries[(workspace_id, version)] = _Entry(entry.expires_at, kept)
            self._newest[workspace_id] = max(version, self._newest.get(workspace_id, version))
            return kept

    def newest(self, workspace_id: str) -> dict[SecretId, bytes] | None:
        """The secrets of the newest version of the workspace held here (if not expired)."""
        version = self._newest.get(workspace_id)
        return None if version is None else self.get(workspace_id, version)

    def revise(
        self, workspace_id: str, version: int, keep: Callable[[SecretId], bool], added: Mapping[SecretId, bytes]
    ) -> None:
        """Where this version's secrets are held: those `keep` refuses are let go and `added` are held as well,
        until the entry expires as it would have (a shred moved some shard keys: the others stay warm)."""
        with self._lock:
            entry = self._entries.get((workspace_id, version))
            if entry is not None:
                held = dict(entry.secrets)  # a copy: a request may add a derived key to it meanwhile
                kept = {secret_id: key for secret_id, key in held.items() if keep(secret_id)}
                self._entries[(workspace_id, version)] = _Entry(entry.expires_at, kept | dict(added))

    def drop(self, workspace_id: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == workspace_id]:
                del self._entries[key]
            self._newest.pop(workspace_id, None)

    def __repr__(self) -> str:
        return f"KeyCache({len(self._entries)} versions)"
