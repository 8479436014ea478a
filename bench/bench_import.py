"""Bulk import: encrypted (8 fields; 5 blind indexes: customer number, email, phone, IBAN, family name; a data
key per customer) against a plaintext baseline with the same indexes on the plain values, that parses the
same file, validates with the same rules and inserts the same batches."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import WORKSPACE, container, databases, plain_customers
from dataset import write_csv
from obhut.container import Container
from obhut.customers import rules
from obhut.customers.service import canonical_input
from obhut.customers.tasks import _csv_rows, import_file
from obhut.kit.clock import today
from obhut.kit.db import unit_of_work
from obhut.kit.ids import new_id

BATCH = 1000


def plaintext_import(built: Container, path: Path) -> int:
    count, batch, day = 0, [], today()

    def flush() -> None:
        with unit_of_work(built.sessions) as session:
            session.execute(plain_customers.insert(), batch)

    with path.open(encoding="utf-8", newline="") as handle:
        for _line, raw in _csv_rows(handle):
            values = rules.normalise(canonical_input(raw), "DE", day)
            row = {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in values.items()}
            batch.append({"workspace_id": WORKSPACE, "id": new_id(), "spare": None, **row})
            if len(batch) >= BATCH:
                flush()
                count += len(batch)
                batch = []
    if batch:
        flush()
        count += len(batch)
    return count


def validation_only(path: Path) -> float:
    """Rows per second through the same parser and rules with nothing stored: the ceiling of any import in one
    process, encrypted or not."""
    day, count = today(), 0
    start = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as handle:
        for _line, raw in _csv_rows(handle):
            rules.normalise(canonical_input(raw), "DE", day)
            count += 1
    return count / (time.perf_counter() - start)


def run(backend: str, count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv_path = write_csv(folder / "customers.csv", count)
        with databases(backend, folder / "var") as settings, container(settings) as built:
            start = time.perf_counter()
            report = import_file(built.customers, built.vault, built.sessions, WORKSPACE, csv_path, batch_size=BATCH)
            encrypted = time.perf_counter() - start
            assert report.imported == count, report
            start = time.perf_counter()
            assert plaintext_import(built, csv_path) == count
            plain = time.perf_counter() - start
            ceiling = validation_only(csv_path)
    return {"encrypted": count / encrypted, "plaintext": count / plain, "validation": ceiling}


def peak_memory_mb(count: int) -> float:
    """Peak RSS of the real CLI importing `count` customers in a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = write_csv(Path(tmp) / "customers.csv", count)
        subprocess.run(
            [sys.executable, "-m", "obhut", "customers", "import", str(csv_path)],
            cwd=tmp,
            check=True,
            capture_output=True,
        )
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args()
    print(f"bulk import of {args.count:,} customers (8 fields, 5 indexes), one process")
    print(
        f"{'database':<10} {'encrypted/s':>12} {'plaintext/s':>12} {'ratio':>7} {'validation only/s':>18}  "
        "targets: >= 15,000/s, ratio >= 0.33"
    )
    for backend in args.backends.split(","):
        rates = run(backend, args.count)
        print(
            f"{backend:<10} {rates['encrypted']:>12,.0f} {rates['plaintext']:>12,.0f} "
            f"{rates['encrypted'] / rates['plaintext']:>7.2f} {rates['validation']:>18,.0f}"
        )
    print("validation only: the same file through the same parser and rules, nothing stored (no import is faster)")
    if not args.no_memory:
        print(
            f"peak RSS of 'obhut customers import' ({args.count:,}): {peak_memory_mb(args.count):,.0f} MB "
            "(target < 300 MB)"
        )


if __name__ == "__main__":
    main()
