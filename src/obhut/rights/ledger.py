"""The erasure ledger: an append-only file, kept outside the databases and their backups, naming every
customer erased (by id and workspace only) in a hash chain. After a backup is restored it is replayed, so a
customer erased after the backup was taken is erased again instead of coming back."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from obhut.kit.errors import ConfigurationError

GENESIS = "0" * 64


@dataclass(frozen=True)
class Erasure:
    workspace_id: str
    customer_id: str
    at: datetime


class ErasureLedger:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _lines(self) -> Iterator[tuple[int, dict[str, str]]]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, json.loads(line)

    def entries(self) -> list[Erasure]:
        """Every erasure recorded, oldest first; refuses a ledger whose chain is broken (edited by hand)."""
        head, found = GENESIS, []
        for number, entry in self._lines():
            body = {k: entry[k] for k in ("workspace", "customer", "at")}
            if entry.get("prev") != head or _hash(head, body) != entry.get("hash"):
                raise ConfigurationError(f"the erasure ledger {self.path} is broken at line {number}: restore it")
            head = entry["hash"]
            found.append(Erasure(entry["workspace"], entry["customer"], datetime.fromisoformat(entry["at"])))
        return found

    def append(self, erasures: Sequence[Erasure]) -> None:
        """Records erasures, on disk (fsync) before their transaction commits: a crash in between leaves at
        most entries whose replay finds nothing to do. Appends from several processes take turns (flock)."""
        if not erasures:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            head, lines = _last_hash(handle), []
            for erasure in erasures:
                body = {
                    "workspace": erasure.workspace_id,
                    "customer": erasure.customer_id,
                    "at": erasure.at.isoformat(),
                }
                entry = {**body, "prev": head, "hash": _hash(head, body)}
                head = entry["hash"]
                lines.append(json.dumps(entry, sort_keys=True) + "\n")
            handle.write("".join(lines))
            handle.flush()
            os.fsync(handle.fileno())


def _last_hash(handle: IO[str]) -> str:
    """The newest entry's hash, read from the file's end (the ledger grows without bound)."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return GENESIS
    handle.seek(max(0, size - 4096))
    last = handle.read().rstrip("\n").rsplit("\n", 1)[-1]
    return str(json.loads(last)["hash"])


def _hash(prev: str, body: dict[str, str]) -> str:
    return hashlib.sha256(f"{prev}\n{json.dumps(body, sort_keys=True)}".encode()).hexdigest()
