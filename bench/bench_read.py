"""Reading one customer by id and by email lookup with N stored, against the same reads of a plaintext
table (same columns, same indexes) in the same database."""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import bindparam, select

from common import WORKSPACE, container, databases, plain_customers
from dataset import write_csv
from obhut.access.rules import ALL_PERMISSIONS
from obhut.access.service import Principal
from obhut.container import Container
from obhut.customers.tasks import import_file
from obhut.kit.db import unit_of_work
from obhut.kit.settings import Settings

READS = 10_000


def _cuts(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


def paired(ours: Callable[[int], object], plain: Callable[[int], object], keys: int) -> list[tuple[float, float]]:
    """p50 and p99 (ms) of each, measured in turns (in random order within each turn) so that whatever else the
    machine does meanwhile falls on both alike."""
    for warm in range(200):  # warm caches and connections
        ours(warm % keys)
        plain(warm % keys)
    samples: dict[Callable[[int], object], list[float]] = {ours: [], plain: []}
    for _ in range(READS):
        key = random.randrange(keys)
        for call in random.sample([ours, plain], 2):
            start = time.perf_counter()
            call(key)
            samples[call].append((time.perf_counter() - start) * 1000)
    return [_cuts(samples[ours]), _cuts(samples[plain])]


def run(backend: str, count: int) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv_path = write_csv(folder / "customers.csv", count)
        with databases(backend, folder / "var") as settings, container(settings) as built:
            import_file(built.customers, built.vault, built.sessions, WORKSPACE, csv_path, batch_size=2000)
            return measure(built, settings)


def measure(built: Container, settings: Settings) -> dict[str, tuple[float, float]]:  # noqa: ARG001
    with unit_of_work(built.sessions) as session:
        ids = [r.id for r in built.customers.records(session, WORKSPACE)]
        emails = [r.values["email"] for r in built.customers.records(session, WORKSPACE, 5000)][: len(ids)]
        plain = [(i, e) for i, e in session.execute(select(plain_customers.c.id, plain_customers.c.email))]
    if not plain:
        with unit_of_work(built.sessions) as session:
            session.execute(
                plain_customers.insert(),
                [
                    {
                        "workspace_id": WORKSPACE,
                        "id": i,
                        "email": e,
                        "given_name": "Anna",
                        "family_name": "Muster",
                        "phone": "+49301234567",
                        "iban": "DE89370400440532013000",
                        "notes": "n",
                        "birth_date": "1980-01-01",
                    }
                    for i, e in zip(ids, emails, strict=True)
                ],
            )
            plain = list(zip(ids, emails, strict=True))

    with unit_of_work(built.sessions) as session:
        owner = Principal(WORKSPACE, "bench", "owner", ALL_PERMISSIONS, frozenset({"mfa"}))
        plan = built.policies.plan(session, owner, "support", None)

    def by_id(n: int) -> object:
        with unit_of_work(built.sessions) as session:
            return built.customers.get(session, WORKSPACE, ids[n])

    def by_email(n: int) -> object:
        with unit_of_work(built.sessions) as session:
            return built.customers.lookup(session, WORKSPACE, "email", emails[n], plan)

    # Built once, as Obhut's read path builds its statements once: the comparison is of storage, not of
    # SQLAlchemy's statement construction.
    table = plain_customers.c
    one = select(plain_customers).where(table.workspace_id == WORKSPACE, table.id == bindparam("id"))
    matching = select(plain_customers).where(table.workspace_id == WORKSPACE, table.email == bindparam("email"))

    def plain_by_id(n: int) -> object:
        with unit_of_work(built.sessions) as session:
            return session.execute(one, {"id": plain[n][0]}).one()

    def plain_by_email(n: int) -> object:
        with unit_of_work(built.sessions) as session:
            return session.execute(matching, {"email": plain[n][1]}).all()

    figures = {}
    for kind, ours, baseline in (("by id", by_id, plain_by_id), ("by email", by_email, plain_by_email)):
        figures[kind], figures[f"{kind} (plaintext)"] = paired(ours, baseline, len(ids))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    print(
        f"read one customer, {args.count:,} stored, {READS:,} reads each (ms); target: p99 < 2 ms on SQLite, "
        "<= 2x plaintext p99"
    )
    for backend in args.backends.split(","):
        figures = run(backend, args.count)
        print(f"{backend:<10} {'read':<22} {'p50':>7} {'p99':>7}")
        for name, (p50, p99) in figures.items():
            print(f"{'':<10} {name:<22} {p50:>7.3f} {p99:>7.3f}")
        for kind in ("by id", "by email"):
            print(f"{'':<10} {kind} p99 ratio to plaintext: {figures[kind][1] / figures[kind + ' (plaintext)'][1]:.2f}")


if __name__ == "__main__":
    main()
