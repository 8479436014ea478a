"""Bulk import and export of customers: streaming, batched, resumable, with progress callbacks."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session, sessionmaker

from obhut.customers import repository, rules
from obhut.customers.service import CustomerService, canonical_input
from obhut.kit.clock import today
from obhut.kit.db import unit_of_work
from obhut.kit.errors import ValidationFailedError
from obhut.vault.service import Vault
from obhut.workspaces import service as workspaces

Progress = Callable[[int], None]  # bytes of the file read so far
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
    reader = csv.DictReader(handle)
    for row in reader:
        address = {CSV_ADDRESS[k]: v for k, v in row.items() if k in CSV_ADDRESS and v}
        raw: dict[str, Any] = {k: v for k, v in row.items() if k not in CSV_ADDRESS and k is not None and v}
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
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a CSV or JSON Lines file. Good rows are committed batch by batch; bad rows go to
    `<file>.rejects.csv` with line number, field and reason (never the value). Rows whose external
    reference (or, without one, email) already exists are skipped, so re-running a file, also after an
    interruption, creates no duplicates."""
    with unit_of_work(factory) as session:
        region = workspaces.get(session, workspace_id).default_region
        vault.open(session, workspace_id)  # fail early if the keys are revoked
    report = ImportReport(reject_file=path.with_name(path.name + ".rejects.csv"))
    parse = _jsonl_rows if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else _csv_rows
    batch: list[tuple[int, dict[str, Any]]] = []
    current_day = today()
    with path.open("rb") as raw_file, io.TextIOWrapper(raw_file, encoding="utf-8-sig", newline="") as handle:
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
                _store(service, vault, factory, workspace_id, batch, report)
                batch = []
                if progress:
                    progress(raw_file.tell())
        _store(service, vault, factory, workspace_id, batch, report)
    report.rejected = len({line for line, _, _ in report.rejects})
    _write_rejects(report)
    if progress:
        progress(path.stat().st_size)
    return report


def _store(
    service: CustomerService,
    vault: Vault,
    factory: sessionmaker[Session],
    workspace_id: str,
    batch: list[tuple[int, dict[str, Any]]],
    report: ImportReport,
) -> None:
    if not batch:
        return
    with unit_of_work(factory) as session:
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
                report.duplicates += 1
                continue
            if digest is not None:
                seen[index].add(digest)
            fresh.append(values)
        service.add_many(session, keyring, fresh)
        report.imported += len(fresh)


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
