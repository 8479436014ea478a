"""SQLite's write-ahead log, moved into the database file in a thread of its own.

Left to itself, SQLite makes the commit that takes the log past 1,000 pages copy them all into the database
file: about one write in 200 of a logged read pays a few milliseconds for everyone's, which is that write's p99.
A `Checkpointer` does it beside the writers instead, a moment after they commit (a passive checkpoint waits for
no reader and no writer, and the sqlite3 module lets go of the GIL meanwhile). The commits keep their own check
only as a backstop, for a log that grows past `BACKSTOP_BYTES` between two passes: far enough that one large
transaction (a retention purge's batch logs about 100 MiB) is not made to copy its own pages back before its
commit returns. `KEPT_BYTES` is what the log file keeps of its size once it starts over."""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

from sqlalchemy import Engine, event

BACKSTOP_BYTES = 256 * 2**20  # never reached while the checkpointer keeps up
KEPT_BYTES = 64 * 2**20
log = logging.getLogger("obhut.db")


class Checkpointer:
    """One per SQLite engine: after a commit, waits `delay` seconds for more to gather, then checkpoints once.
    Sleeps while nobody writes; stops when the engine is disposed."""

    running: ClassVar[set[Checkpointer]] = set()

    def __init__(self, engine: Engine, delay: float = 0.05) -> None:
        self.engine, self._delay = engine, delay
        self._written, self._stopped = threading.Event(), threading.Event()
        self.passes = 0
        event.listen(engine, "commit", self._committed)
        event.listen(engine, "engine_disposed", self._disposed)
        self._thread = threading.Thread(target=self._run, name="obhut-wal-checkpoint", daemon=True)
        self._thread.start()
        Checkpointer.running.add(self)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _committed(self, _connection: Any) -> None:
        self._written.set()

    def _disposed(self, _engine: Engine) -> None:
        self.stop()

    def stop(self) -> None:
        Checkpointer.running.discard(self)
        self._stopped.set()
        self._written.set()  # wakes it
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            self._written.wait()
            if self._stopped.wait(self._delay):
                return
            self._written.clear()
            try:
                self.checkpoint()
            except Exception as error:  # noqa: BLE001 - the commits' own backstop still bounds the log
                log.warning("write-ahead log checkpoint failed: %s", type(error).__name__)

    def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint: (busy, pages in the log, pages moved), as SQLite reports them."""
        with self.engine.connect() as connection:
            busy, logged, moved = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        self.passes += 1
        return int(busy), int(logged), int(moved)
