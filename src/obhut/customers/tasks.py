"""Bulk import and export of customers, and filling blind indexes an upgrade added: streaming, batched,
resumable, with progress callbacks."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, Self

from sqlalchemy.orm import Session, sessionmaker

from obhut.audit import service as audit
from obhut.audit.rules import action
from obhut.audit.service import Context, Event
from obhut.customers import repository, rules, segments
from obhut.customers.models import Customer
from obhut.customers.service import CustomerService, canonical_input
from obhut.kit.clock import today
from obhut.kit.db import plan_afresh, refresh_statistics, unit_of_work
from obhut.kit.errors import ValidationFailedError
from obhut.vault.errors import KeyRevokedError
from obhut.vault.models import DataKey
from obhut.vault.service import Vault
from obhut.workspaces import service as workspaces

Progress = Callable[[int], None]  # bytes of the file read so far
# Rows per transaction. Larger batches write each blind-index page fewer times (a batch touches most of
# an index's pages, whatever its size); 5,000 customers in flight take a few tens of MB.
BATCH_SIZE = 5000
CSV_ADDRESS = {
    "address_line1": "line1",
    "address_line2": "line2",
    "postal_code": "postal_code",
    "city": "city",
    "country": "country",
}


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    reject_file: Path | None = None
    lines: int = 0
    rejects: list[tuple[int, str, str]] = field(default_factory=list, repr=False)


def _csv_rows(handle: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows as csv.DictReader gives them (blank lines skipped, the last of repeated columns wins, extra
    cells ignored), without its dict per row: the address parts are picked straight from the cells."""
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        return
    last = {name: position for position, name in enumerate(header)}
    plain = [(name, position) for name, position in last.items() if name not in CSV_ADDRESS]
    address_parts = [(CSV_ADDRESS[name], position) for name, position in last.items() if name in CSV_ADDRESS]
    for row in reader:
        if not row:
            continue
        width = len(row)
        raw: dict[str, Any] = {name: row[at] for name, at in plain if at < width and row[at]}
        address = {part: row[at] for part, at in address_parts if at < width and row[at]}
        if address:
            raw["postal_address"] = address
        yield reader.line_num, raw


def _jsonl_rows(handle: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            yield number, {"__error__": "not valid JSON"}
            continue
        yield number, value if isinstance(value, dict) else {"__error__": "not a JSON object"}


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def import_file(
    service: CustomerService,
    vault: Vault,
    factory: sessionmaker[Session],
    workspace_id: str,
    path: Path,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a CSV or JSON Lines file. Good rows are committed batch by batch; bad rows go to
    `<file>.rejects.csv` with line number, field and reason (never the value). Rows whose external
    reference (or, without one, email) already exists are skipped, so re-running a file, also after an
    interruption, creates no duplicates.

    One writer thread encrypts and stores a batch while this thread reads and checks the next one; the
    database does its part of the work without holding Python's GIL. Batches are stored one at a time,
    in file order, so each sees the ones before it committed."""
    with unit_of_work(factory) as session:
        region = workspaces.get(session, workspace_id).default_region
        vault.open(session, workspace_id)  # fail early if the keys are revoked
    report = ImportReport(reject_file=path.with_name(path.name + ".rejects.csv"))
    parse = _jsonl_rows if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else _csv_rows
    batch: list[tuple[int, dict[str, Any]]] = []
    current_day = today()
    store = partial(_store, service, vault, factory, workspace_id)
    with (
        path.open("rb") as raw_file,
        io.TextIOWrapper(raw_file, encoding="utf-8-sig", newline="") as handle,
        _Writer(report) as writer,
    ):
        for line, raw in parse(handle):
            report.lines = line
            if "__error__" in raw:
                report.rejects.append((line, "", raw["__error__"]))
                continue
            try:
                batch.append((line, rules.normalise(canonical_input(raw), region, current_day)))
            except ValidationFailedError as error:
                report.rejects.extend((line, e.field, e.message) for e in error.errors)
            if len(batch) >= batch_size:
                writer.submit(store, batch)
                batch = []
                if progress:
                    progress(raw_file.tell())
        writer.submit(store, batch)
    if report.imported:
        with unit_of_work(factory) as session:  # plans for the tables as they now are, not as they were
            refresh_statistics(session, [Customer.__tablename__, DataKey.__tablename__])
    report.rejected = len({line for line, _, _ in report.rejects})
    _write_rejects(report)
    if progress:
        progress(path.stat().st_size)
    return report


class _Writer:
    """At most one batch being stored in the background; its counts go into the report, and its error
    comes out of the next `submit` (or of the `with` block)."""

    def __init__(self, report: ImportReport) -> None:
        self._report = report
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="obhut-import")
        self._pending: Future[tuple[int, int]] | None = None

    def submit(self, store: Callable[[list[tuple[int, dict[str, Any]]]], tuple[int, int]], batch: list[Any]) -> None:
        self.wait()
        if batch:
            self._pending = self._pool.submit(store, batch)

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            imported, duplicates = pending.result()
            self._report.imported += imported
            self._report.duplicates += duplicates

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if exc_info[0] is None:
                self.wait()
        finally:
            self._pool.shutdown(wait=True)


def _store(
    service: CustomerService,
    vault: Vault,
    factory: sessionmaker[Session],
    workspace_id: str,
    batch: list[tuple[int, dict[str, Any]]],
) -> tuple[int, int]:
    """Encrypt and insert one batch in its own transaction; returns (imported, duplicates)."""
    duplicates = 0
    with unit_of_work(factory) as session:
        plan_afresh(session)  # each batch makes the tables bigger than the plans of the batch before knew
        keyring = vault.open(session, workspace_id)
        keyed = []
        for line, values in batch:
            index, value = (
                ("external_ref", values["external_ref"])
                if values.get("external_ref")
                else ("email", rules.email_index_form(values["email"]) if values.get("email") else None)
            )
            keyed.append((line, values, index, keyring.blind_index(index, value) if value else None))
        seen: dict[str, set[bytes]] = {}
        for index in ("external_ref", "email"):
            digests = [d for _, _, i, d in keyed if i == index and d is not None]
            seen[index] = repository.existing_index_values(session, workspace_id, index, digests)
        fresh = []
        for _, values, index, digest in keyed:
            if digest is not None and digest in seen[index]:
                duplicates += 1
                continue
            if digest is not None:
                seen[index].add(digest)
            fresh.append(values)
        service.add_many(session, keyring, fresh)
    return len(fresh), duplicates


def _write_rejects(report: ImportReport) -> None:
    assert report.reject_file is not None
    if not report.rejects:
        report.reject_file.unlink(missing_ok=True)
        return
    fd = os.open(report.reject_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "field", "reason"])
        writer.writerows(report.rejects)


def export_jsonl(
    service: CustomerService,
    factory: sessionmaker[Session],
    workspace_id: str,
    out: IO[str],
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Every live customer as one JSON object per line, decrypted; returns the count."""
    count = 0
    with unit_of_work(factory) as session:
        for record in service.records(session, workspace_id):
            row = {"id": record.id, **record.values, "created_at": record.created_at.isoformat()}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
            if progress and count % 1000 == 0:
                progress(count)
    if progress:
        progress(count)
    return count


# Indexes that can be computed again from the stored value (a card's index needs the full number, never kept).
REINDEXED = [spec for spec in rules.FIELDS.values() if spec.index and spec.kind is not rules.Kind.CARD]
_PAIRS = [(spec.name, spec.index or spec.name) for spec in REINDEXED]
_READ = sorted(spec.name for spec in REINDEXED)  # what a reindex decrypts, for its log entries
_CATEGORIES = sorted({spec.category.value for spec in REINDEXED})
WORKER = Context("system:customers", "system", "local", "obhut-worker", "")


def reindex(
    vault: Vault,
    factory: sessionmaker[Session],
    workspace_id: str,
    *,
    batch_size: int = 1000,
    progress: Callable[[int, int], None] | None = None,
    context: Context = WORKER,
) -> int:
    """Fills the blind indexes customers lack although the field holds a value: an index that an upgrade added
    (the family name's) covers the customers stored before it. Batches commit on their own, so a rerun goes
    on where a stop left off; each batch's decryptions are in the access log in its transaction (`context`:
    who runs it). Answers how many customers were indexed; `progress` gets (done, total)."""
    source = "cli" if context.actor.startswith("cli:") else "worker"
    with factory() as session:
        total = repository.count_unindexed(session, workspace_id, _PAIRS)
    done, after = 0, ""
    while total:
        with unit_of_work(factory) as session:
            rows = repository.unindexed(session, workspace_id, _PAIRS, after, batch_size)
            if not rows:
                break
            keyring = vault.open(session, workspace_id)
            ciphers = keyring.subjects([c.id for c in rows])
            stored = segments.filled(vault.sensitive, keyring, rows)  # the fields kept apart, in place
            for customer, found in zip(rows, stored, strict=True):
                for spec in REINDEXED:
                    column, blob = f"{spec.index}_index", getattr(found, spec.name)
                    if blob is not None and getattr(customer, column) is None:
                        value = rules.index_form(spec.kind, ciphers[customer.id].open(spec.name, blob).decode())
                        setattr(customer, column, keyring.blind_index(spec.index or spec.name, value))
            reindexed = action(source, "customer", "reindex")
            event = Event(reindexed, categories=_CATEGORIES, requested=_READ, count=len(rows))
            audit.record(session, keyring, workspace_id, context, event)
            after, done = rows[-1].id, done + len(rows)
        if progress:
            progress(done, total)
    return done


@dataclass
class Reindexer:
    """The background job: `reindex` for every workspace that needs it, until a pass finds nothing left (new
    customers are indexed when written; only an upgrade leaves gaps). A workspace whose keys are revoked
    waits for their restoration."""

    vault: Vault
    factory: sessionmaker[Session]
    complete: bool = False

    def __call__(self) -> int:
        if self.complete:
            return 0
        with self.factory() as session:
            waiting = repository.workspaces_unindexed(session, _PAIRS)
        done, revoked = 0, False
        for workspace_id in waiting:
            try:
                done += reindex(self.vault, self.factory, workspace_id)
            except KeyRevokedError:
                revoked = True
        self.complete = not revoked
        return done


def sweep_sensitive(vault: Vault, factory: sessionmaker[Session]) -> int:
    """The background job: delete the sensitive store's records that no customer points to (left by a backup's
    hold on deletions, or by a process that stopped between a commit and its clean-up)."""
    store = vault.sensitive
    if store is None:
        return 0
    return sum(store.sweep(w, segments.referenced_in(factory, w)) for w in store.workspaces())
