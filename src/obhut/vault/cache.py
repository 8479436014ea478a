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
    live: dict[tuple[str, int], int] = field(default_factory=dict)  # the generation held, by kind and slot


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

    def add(self, workspace_id: str, version: int, secrets: Mapping[SecretId, bytes]) -> dict[SecretId, bytes]:
        """Holds `secrets` beside those of the version already held (an entry expired starts afresh); the older
        generation held of a slot they bring is let go (the slot was moved: that key is destroyed). Answers
        what the version now holds."""
        with self._lock:
            entry = self._entries.get((workspace_id, version))
            if entry is None or entry.expires_at < time.monotonic():
                entry = self._entries[(workspace_id, version)] = _Entry(time.monotonic() + self._ttl)
            for (kind, slot, generation), key in secrets.items():
                held = entry.live.get((kind, slot))
                if held is None or held < generation:
                    if held is not None:
                        entry.secrets.pop((kind, slot, held), None)
                    entry.live[(kind, slot)] = generation
                entry.secrets[(kind, slot, generation)] = key
            self._newest[workspace_id] = max(version, self._newest.get(workspace_id, version))
            return entry.secrets

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
