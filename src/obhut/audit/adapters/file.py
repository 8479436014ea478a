"""Checkpoints appended to a file (on another volume, a WORM mount, a synced folder), one signed note after
another, flushed to disk before the next: what `obhut audit verify --checkpoints FILE` reads back."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("obhut.audit")


class FileSink:
    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def publish(self, workspace_id: str, note: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(descriptor, note.encode())
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        except OSError as error:
            log.warning("checkpoint of '%s' not written to %s: %s", workspace_id, self.path, error.strerror)
