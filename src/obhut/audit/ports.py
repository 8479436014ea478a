"""Where signed checkpoints go besides the database: somewhere its administrator cannot rewrite, so that a
log rewritten together with its checkpoints still disagrees with what was published."""

from __future__ import annotations

from typing import Protocol


class CheckpointSink(Protocol):
    name: str

    def publish(self, workspace_id: str, note: str) -> None:
        """Receives each new checkpoint (a C2SP signed note) after its transaction committed. Must not raise:
        a sink that is down loses nothing, since every later checkpoint covers the earlier ones."""
