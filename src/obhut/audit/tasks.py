"""Verifying the whole log: recompute every leaf from the stored entry, rebuild the tree, and check it against
every signed checkpoint. Reports each problem with the first position that is not as it was signed."""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Dialect, Select, Table, func, select
from sqlalchemy.orm import Session, sessionmaker

from obhut.audit import alerts, merkle, notes, rules, service
from obhut.audit.adapters.webhook import AlertWebhook
from obhut.audit.models import AuditCheckpoint, AuditEntry
from obhut.audit.ports import CheckpointSink
from obhut.kit import parallel, stream
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.vault.cipher import signature_valid
from obhut.vault.keyring import Keyring
from obhut.vault.service import Vault

log = logging.getLogger("obhut.audit")

Progress = Callable[[int], None]
_ENTRIES: Table = AuditEntry.__table__  # type: ignore[assignment]
_CONTENT = [_ENTRIES.c[name] for name in rules.CONTENT_COLUMNS]


@dataclass
class Report:
    entries: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)
    first_bad: int | None = None  # the first position that is not what was signed

    @property
    def ok(self) -> bool:
        return not self.problems

    def bad(self, position: int, problem: str) -> None:
        self.problems.append(problem)
        self.first_bad = position if self.first_bad is None else min(self.first_bad, position)


def _exported(note: str, workspace_id: str, public_key: bytes) -> tuple[int, bytes] | None:
    """(size, root) of a checkpoint note this workspace's key signed; None for anything else."""
    try:
        body, signatures = notes.parse_signed_note(note)
        origin, size, root = notes.parse_checkpoint_body(body)
    except ValueError:
        return None
    name = rules.origin(workspace_id)
    key_id = notes.note_key_id(name, public_key)
    ok = any(n == name and k == key_id and signature_valid(public_key, body.encode(), s) for n, k, s in signatures)
    return (size, root) if ok and origin == name else None


def note_problem(note: str, workspace_id: str, public_key: bytes, row: AuditCheckpoint) -> str | None:
    """Why a stored checkpoint is not one this workspace signed for this tree, or None."""
    signed = _exported(note, workspace_id, public_key)
    if signed is None:
        return f"checkpoint {row.size} has no valid signature of this workspace's key (forged or altered)"
    if signed != (row.size, bytes(row.root)):
        return f"checkpoint {row.size} does not match its signed note"
    return None


def signed_roots(
    session: Session, workspace_id: str, public_key: bytes, exported: Sequence[str], report: Report
) -> dict[int, bytes]:
    """size -> root of every checkpoint this workspace signed, from the database and from outside it."""
    rows = session.scalars(
        select(AuditCheckpoint).where(AuditCheckpoint.workspace_id == workspace_id).order_by(AuditCheckpoint.size)
    )
    signed: dict[int, bytes] = {}
    for row in rows:
        report.checkpoints += 1
        problem = note_problem(row.note, workspace_id, public_key, row)
        if problem is None:
            signed[row.size] = bytes(row.root)
        else:
            report.bad(max(row.size - 1, 0), problem)
    for note in exported:
        outside = _exported(note, workspace_id, public_key)
        if outside is None:
            report.bad(0, "an exported checkpoint has no valid signature of this workspace's key")
        elif signed.setdefault(outside[0], outside[1]) != outside[1]:
            report.bad(max(outside[0] - 1, 0), f"checkpoint {outside[0]} differs from the exported one")
    return signed


CHUNK = 4096  # entries hashed at a time: a power of two, so that every chunk is a subtree of its own


def verify(
    session: Session,
    keyring: Keyring,
    workspace_id: str,
    exported: Sequence[str] = (),
    progress: Progress | None = None,
    *,
    deep: bool = True,
    chunk_size: int = CHUNK,
    workers: int | None = None,
) -> Report:
    """`exported`: checkpoint notes kept outside the database (a file, a webhook's receiver). They catch what
    the database alone cannot show: a log truncated together with its newest checkpoints. `deep`: also check
    that every entry's columns still say what its body says. `workers`: processes that read and hash chunks
    side by side, PostgreSQL only (None: `default_workers`; 1: this process alone, reading ahead)."""
    if chunk_size < 1 or chunk_size & (chunk_size - 1):
        raise ValueError(f"the chunk size must be a power of two, got {chunk_size}")
    report = Report()
    signed = signed_roots(session, workspace_id, keyring.signer(rules.SIGNER).public_key, exported, report)
    tree = merkle.CompactRange()
    last_good = 0  # the largest checkpointed size whose root matched
    plan = _Plan(workspace_id, tuple(sorted(signed)), deep, chunk_size)
    for checked in _checked(session, plan, default_workers(session, deep=deep) if workers is None else workers):
        for position in checked.changed:
            report.bad(position, f"entry {position} was changed after it was logged")
        for size, root in zip(checked.stops, tree.join(checked.block), strict=True):
            last_good = _checkpointed(report, size, root == signed[size], last_good)
        if progress is not None:
            progress(checked.block.size)
        if not checked.whole:
            report.bad(tree.size, f"entry {tree.size} is missing (deleted, or the entries were renumbered)")
            break
    report.entries = tree.size
    _ends(report, max(signed, default=0), tree.size)
    return report


def default_workers(session: Session, *, deep: bool) -> int:
    """Processes for a verification: with every entry's columns, as many as `kit.parallel` finds (the Python work
    is the limit); the tree alone, half as many: one process already hashes on one core while its database
    backend reads on another (measured on 2 cores: one process 330k entries/s, two 280k)."""
    found = parallel.workers_for(session)
    return found if deep else max(1, found // 2)


@dataclass(frozen=True)
class _Plan:
    workspace_id: str
    checkpoints: tuple[int, ...]  # signed sizes, ascending
    deep: bool
    chunk_size: int

    def query(self, start: int | None = None, end: int | None = None) -> Select[Any]:
        """The entries in position order: all of them, or those from `start` up to `end`."""
        where = [_ENTRIES.c.workspace_id == self.workspace_id, _ENTRIES.c.seq.is_not(None)]
        if start is not None and end is not None:
            where += [_ENTRIES.c.seq >= start, _ENTRIES.c.seq < end]
        columns = (_ENTRIES.c.seq, _ENTRIES.c.body, _ENTRIES.c.leaf_hash, *(_CONTENT if self.deep else ()))
        return select(*columns).where(*where).order_by(_ENTRIES.c.seq)


@dataclass(frozen=True)
class _Checked:
    """One chunk, checked: positions from its start up to the first missing entry (`whole`: none missing)."""

    whole: bool
    changed: list[int]
    stops: list[int]  # checkpoint sizes within it
    block: merkle.Block


def _checked(session: Session, plan: _Plan, workers: int) -> Iterator[_Checked]:
    """The chunks checked in order: by worker processes, each reading its chunks by position, or here, from one
    stream of the entries that a thread reads ahead."""
    if workers > 1 and parallel.supports(session):
        positioned = (_ENTRIES.c.workspace_id == plan.workspace_id, _ENTRIES.c.seq.is_not(None))  # the index's side
        last = session.scalar(select(func.max(_ENTRIES.c.seq)).where(*positioned))
        size = 0 if last is None else last + 1
        tasks = [(plan, start, min(plan.chunk_size, size - start)) for start in range(0, size, plan.chunk_size)]
        yield from parallel.ordered_map(session, _check_range, tasks, workers)
        return
    processors = _processors(session.get_bind().dialect, plan.deep)
    start = 0
    with stream.driver_chunks(session, plan.query(), plan.chunk_size) as chunks:
        for chunk in chunks:
            yield (checked := _check(plan, chunk, start, len(chunk), processors))
            start += checked.block.size


def _check_range(connection: Connection, task: tuple[_Plan, int, int]) -> _Checked:
    """In a worker: one chunk, read by its positions."""
    plan, start, expected = task
    rows = stream.driver_rows(connection, plan.query(start, start + expected))  # not what was sequenced since
    return _check(plan, rows, start, expected, _processors(connection.dialect, plan.deep))


def _check(plan: _Plan, rows: stream.Chunk, start: int, expected: int, processors: _Processors) -> _Checked:
    """Rows that should hold the `expected` positions from `start` on."""
    positions, bodies, stored = list(zip(*rows, strict=True))[:3] if rows else ((), (), ())
    whole = positions == tuple(range(start, start + expected))
    # where an entry is missing, check up to it
    count = expected if whole else next((i for i, p in enumerate(positions) if p != start + i), len(rows))
    rows, bodies, stored = rows[:count], bodies[:count], stored[:count]
    leaves = rules.leaf_hashes(start, bodies)
    changed = [] if leaves == list(stored) else [start + i for i, h in enumerate(leaves) if h != stored[i]]
    if plan.deep:
        changed = sorted({*changed, *_columns_changed(rows, start, processors)})
    checkpoints = plan.checkpoints
    stops = list(checkpoints[bisect_right(checkpoints, start) : bisect_right(checkpoints, start + count)])
    return _Checked(whole, changed, stops, merkle.block(leaves, [stop - start for stop in stops]))


_Processors = Sequence[tuple[int, Callable[[Any], Any]]]


def _processors(dialect: Dialect, deep: bool) -> _Processors:
    """What turns the driver's values of the content columns into the ones the body was made from."""
    if not deep:
        return []
    found = ((i, c.type.dialect_impl(dialect).result_processor(dialect, None)) for i, c in enumerate(_CONTENT, 3))
    return [(i, processor) for i, processor in found if processor is not None]


def _columns_changed(rows: stream.Chunk, start: int, processors: _Processors) -> list[int]:
    """Positions whose columns no longer say what their body says."""
    out = []
    for i, row in enumerate(rows):
        values = list(row)
        for position, process in processors:
            values[position] = process(values[position])
        if rules.body_bytes(dict(zip(rules.CONTENT_COLUMNS, values[3:], strict=True))) != row[1]:
            out.append(start + i)
    return out


def _checkpointed(report: Report, size: int, matches: bool, last_good: int) -> int:
    """Compares the rebuilt tree of `size` with its signed root; the new last good size."""
    if matches:
        return size
    located = report.first_bad is not None and last_good <= report.first_bad < size  # a changed leaf found it
    report.bad(
        report.first_bad if located and report.first_bad is not None else last_good,
        f"the tree of size {size} does not match its signed checkpoint: an entry from position {last_good} "
        "on was altered",
    )
    return last_good


def _ends(report: Report, signed_size: int, size: int) -> None:
    if signed_size > size:
        report.bad(size, f"the log was truncated: checkpoint {signed_size} covers entries beyond {size}")
    elif size > signed_size:
        report.bad(signed_size, f"entries from {signed_size} on are covered by no signed checkpoint (inserted?)")


class Background(threading.Thread):
    """While the service runs: signs a checkpoint over new entries every `every` seconds, and every
    `scan_every` seconds (0: never) scans today's activity for suspicious access, posting new alerts, and
    runs the other `jobs` it was given."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        vault: Vault,
        sinks: Sequence[CheckpointSink],
        webhook: AlertWebhook | None,
        every: float,
        scan_every: float,
        jobs: Sequence[Callable[[], object]] = (),
    ) -> None:
        super().__init__(name="obhut-background", daemon=True)
        self._sessions, self._vault, self._sinks, self._webhook = sessions, vault, sinks, webhook
        self._every, self._scan_every, self._jobs = every, scan_every, jobs
        self._halt = threading.Event()

    def run(self) -> None:
        scanned = time.monotonic()
        while not self._halt.wait(self._every):
            try:
                self.sequence()
                if self._scan_every and time.monotonic() - scanned >= self._scan_every:
                    scanned = time.monotonic()
                    self.scan()
                    for job in self._jobs:  # other domains' periodic work (consent expiry)
                        job()
            except Exception as error:  # noqa: BLE001 - keep going; the entries wait, nothing is lost
                log.error("the access log's background work failed: %s", type(error).__name__)  # noqa: TRY400 - no traceback: it could hold data

    def sequence(self) -> None:
        with self._sessions() as session:
            workspaces = service.waiting_workspaces(session)
        for workspace_id in workspaces:
            service.sequence_all(self._sessions, self._vault, workspace_id, self._sinks)

    def scan(self) -> None:
        today = now().date()
        with self._sessions() as session:
            workspaces = alerts.active_workspaces(session, datetime.combine(today, datetime.min.time(), UTC))
        for workspace_id in workspaces:
            with unit_of_work(self._sessions) as session:
                alerts.publish(session, alerts.scan(session, workspace_id, [today]), self._webhook)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
