"""What segmentation costs: the same customers imported into a workspace that keeps the financial and notes
categories in a sensitive store of its own, and into one that keeps everything in the main database (the
baseline, same run, same machine); then reads by id and lookups by IBAN of both, measured in turns."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from bench_read import paired
from common import WORKSPACE, container, databases
from dataset import write_csv
from obhut.access.rules import ALL_PERMISSIONS
from obhut.access.service import Principal
from obhut.container import Container
from obhut.customers.tasks import import_file
from obhut.kit.db import unit_of_work

APART = "financial,notes"


def _imported(stack: ExitStack, backend: str, folder: Path, csv_path: Path, sensitive: str) -> tuple[Container, float]:
    """A container on fresh databases (closed with `stack`), the file imported; and the import's rate."""
    settings = stack.enter_context(databases(backend, folder, sensitive=sensitive))
    built = stack.enter_context(container(settings))
    start = time.perf_counter()
    report = import_file(built.customers, built.vault, built.sessions, WORKSPACE, csv_path, batch_size=5000)
    return built, report.imported / (time.perf_counter() - start)


def _reads(built: Container) -> tuple[Callable[[int], object], Callable[[int], object], int]:
    with unit_of_work(built.sessions) as session:
        records = list(built.customers.records(session, WORKSPACE, 5000))
        owner = Principal(WORKSPACE, "bench", "owner", ALL_PERMISSIONS, frozenset({"mfa"}))
        plan = built.policies.plan(session, owner, "support", None)
    ids, ibans = [r.id for r in records], [r.values["iban"] for r in records]

    def by_id(n: int) -> object:
        with unit_of_work(built.sessions) as session:
            return built.customers.view(session, WORKSPACE, ids[n], plan)

    def by_iban(n: int) -> object:
        with unit_of_work(built.sessions) as session:
            return built.customers.lookup(session, WORKSPACE, "iban", ibans[n], plan)

    return by_id, by_iban, len(ids)


def run(backend: str, count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        csv_path = write_csv(folder / "customers.csv", count)
        apart, apart_rate = _imported(stack, backend, folder / "apart", csv_path, APART)
        whole, whole_rate = _imported(stack, backend, folder / "whole", csv_path, "")
        print(f"{backend:<10} import: {apart_rate:,.0f}/s kept apart; {whole_rate:,.0f}/s all in the main database")
        (apart_id, apart_iban, keys), (whole_id, whole_iban, _) = _reads(apart), _reads(whole)
        for kind, ours, baseline in (("by id", apart_id, whole_id), ("by IBAN", apart_iban, whole_iban)):
            (p50, p99), (base50, base99) = paired(ours, baseline, keys)
            print(
                f"{'':<10} read {kind:<8} p50 / p99 {p50:.3f} / {p99:.3f} ms kept apart; "
                f"{base50:.3f} / {base99:.3f} ms in the main database ({p99 / base99:.2f}x at p99)"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    print(f"segmentation: {APART} kept in a sensitive store of their own, {args.count:,} customers (baseline: none)")
    for backend in args.backends.split(","):
        run(backend, args.count)


if __name__ == "__main__":
    main()
