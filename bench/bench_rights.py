"""Data-subject rights with N customers stored. Erasing one customer who has 1,000 access-log entries and
20 consent events, against deleting the same customer's row and its related rows from plaintext tables; the
access export (the ZIP) of such a customer, against selecting those plaintext rows and serialising them to
JSON; and the retention purge, against deleting the same number of plaintext rows by primary key, batch for
batch, in a few rounds (each of other customers; the median is the figure). Every baseline runs in the same
database engine, in the same run."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import Column, Index, MetaData, String, Table, Text, delete, select, update

from common import WORKSPACE, container, databases, plain_customers, settle
from dataset import write_csv
from obhut.audit import rules as audit_rules
from obhut.audit import service as audit
from obhut.audit.service import Context, Event
from obhut.consent import service as consent
from obhut.consent.models import ConsentNotice, ConsentPurpose
from obhut.consent.rules import Channel, Kind
from obhut.container import Container
from obhut.customers.models import Customer
from obhut.customers.rules import Category
from obhut.customers.tasks import import_file
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.kit.ids import new_id
from obhut.retention import service as retention
from obhut.retention.rules import Action, Anchor, Policy
from obhut.rights import erasure, export
from obhut.rights.ports import Subject

WARM = 2  # customers with a history whose erasure and export are run first and not counted
PURPOSES = ("newsletter", "partner_offers")
CONTEXT = Context("staff:0190b3c2-0000-7000-8000-000000000001", "support_agent", "192.0.2.10", "crm/2.1", "req")
RELATED = ("at", "actor", "role", "action", "outcome", "categories", "purpose", "detail")

plain = MetaData()
plain_related = Table(  # what a plaintext design keeps about a customer besides the row: log and consent rows
    "plain_related",
    plain,
    Column("workspace_id", String(63), primary_key=True),
    Column("entry_id", String(36), primary_key=True),
    Column("customer_id", String(36), nullable=False),
    Column("kind", String(16), nullable=False),
    *(Column(name, Text) for name in RELATED),
    Index("ix_plain_related_customer", "workspace_id", "customer_id"),
)


def catalogue(built: Container) -> None:
    moment = now()
    with unit_of_work(built.sessions) as session:
        for key in PURPOSES:
            session.add(
                ConsentPurpose(
                    workspace_id=WORKSPACE, key=key, title_en=key, title_de=key, description_en=key,
                    description_de=key, legal_basis="consent", categories="contact", recipients="", retention="",
                    sale_or_sharing=False, updated_at=moment,
                )
            )  # fmt: skip
            session.add(
                ConsentNotice(
                    workspace_id=WORKSPACE, purpose_key=key, version="1.0", language="de", major=1,
                    text=f"Wir nutzen Ihre Daten für {key}.", text_hash="0" * 64, published_at=moment,
                )
            )  # fmt: skip


def history(built: Container, customer_id: str, entries: int, events: int) -> None:
    """`entries` access-log entries about the customer and `events` consent events, granted and withdrawn in
    turn over two purposes."""
    reads = [
        Event(
            audit_rules.action("api", "customer", "read"), "masked", customer_id=customer_id,
            categories=["contact", "identity"], requested=["email", "family_name", "iban"],
            returned={"email": "masked", "family_name": "revealed", "iban": "withheld"}, purpose="support",
            ticket=f"T-{n}", count=1,
        )
        for n in range(entries)
    ]  # fmt: skip
    with unit_of_work(built.sessions) as session:
        keyring = built.vault.open(session, WORKSPACE)
        audit.record_many(session, keyring, WORKSPACE, CONTEXT, reads)
        for n in range(events):
            kind = Kind.GRANTED if n % 4 < 2 else Kind.WITHDRAWN
            change = consent.Change(PURPOSES[n % 2], kind, Channel.API, "customer", notice_version="1.0")
            consent.append(session, keyring, WORKSPACE, customer_id, change)


def plain_rows(built: Container, ids: list[str], subjects: list[str], entries: int, events: int) -> None:
    """The plaintext baseline's tables: a row per customer, and for each subject their related rows."""
    for start in range(0, len(ids), 10_000):
        rows = [
            {"workspace_id": WORKSPACE, "id": cid, "external_ref": f"K-{n:08d}", "given_name": "Anna",
             "family_name": "Muster", "birth_date": "1980-01-01", "email": f"anna.muster.{n}@example.com",
             "phone": "+49301234567", "postal_address": "Musterstraße 1, 10115 Berlin, DE",
             "iban": "DE89370400440532013000", "notes": f"Invented customer number {n} for benchmarks"}
            for n, cid in enumerate(ids[start : start + 10_000], start=start)
        ]  # fmt: skip
        with unit_of_work(built.sessions) as session:
            session.execute(plain_customers.insert(), rows)
    stamp = now().isoformat()
    for cid in subjects:
        related = [
            {"workspace_id": WORKSPACE, "entry_id": new_id(), "customer_id": cid,
             "kind": "log" if n < entries else "consent", "at": stamp, "actor": CONTEXT.actor, "role": CONTEXT.role,
             "action": "api:customer:read" if n < entries else "granted", "outcome": "masked",
             "categories": "contact identity", "purpose": "support" if n < entries else PURPOSES[n % 2],
             "detail": "email=masked family_name=revealed iban=withheld"}
            for n in range(entries + events)
        ]  # fmt: skip
        with unit_of_work(built.sessions) as session:
            session.execute(plain_related.insert(), related)


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def cuts(samples: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max in ms (with few samples the p99 lies close to the max)."""
    points = statistics.quantiles(samples, n=100, method="inclusive")
    return points[49], points[98], max(samples)


def requests(built: Container, subjects: list[str]) -> dict[str, list[float]]:
    """For each subject in turn: our export, the plaintext one, our erasure, the plaintext one (interleaved,
    so both see the same machine noise)."""
    samples: dict[str, list[float]] = {"export": [], "plain export": [], "erasure": [], "plain erasure": []}
    sizes: list[int] = []

    def our_export(cid: str) -> None:
        with unit_of_work(built.sessions) as session:
            keyring = built.vault.open(session, WORKSPACE)
            sizes.append(len(export.archive(built.rights.registry, Subject(session, keyring, WORKSPACE, cid, "en"))))

    def plain_export(cid: str) -> None:
        with unit_of_work(built.sessions) as session:
            row = session.execute(
                select(plain_customers).where(plain_customers.c.workspace_id == WORKSPACE, plain_customers.c.id == cid)
            ).one()
            related = session.execute(
                select(plain_related)
                .where(plain_related.c.workspace_id == WORKSPACE, plain_related.c.customer_id == cid)
                .order_by(plain_related.c.at)
            ).all()
            json.dumps({"customer": row._asdict(), "related": [r._asdict() for r in related]}, ensure_ascii=False)

    def our_erasure(cid: str) -> None:
        with unit_of_work(built.sessions) as session:
            keyring = built.vault.open(session, WORKSPACE)
            erasure.erase(session, keyring, built.rights.registry, built.rights.ledger, cid)

    def plain_erasure(cid: str) -> None:
        with unit_of_work(built.sessions) as session:
            session.execute(
                delete(plain_related).where(
                    plain_related.c.workspace_id == WORKSPACE, plain_related.c.customer_id == cid
                )
            )
            session.execute(
                delete(plain_customers).where(plain_customers.c.workspace_id == WORKSPACE, plain_customers.c.id == cid)
            )

    calls = {"export": our_export, "plain export": plain_export, "erasure": our_erasure, "plain erasure": plain_erasure}
    for n, cid in enumerate(subjects):
        for name, call in calls.items():
            elapsed = timed(partial(call, cid))
            if n >= WARM:
                samples[name].append(elapsed)
    samples["zip kB"] = [size / 1000 for size in sizes[WARM:]]
    return samples


def purge(built: Container, due: list[str], batch: int) -> tuple[float, float, int]:
    """(customers purged/s, plaintext rows deleted/s, customers examined). Each starts from a settled
    database (see `settle`): neither pays for the set-up's or the other's writes still in the log."""
    with unit_of_work(built.sessions) as session:
        for category in Category:
            policy = Policy(category.value, 365, Anchor.LAST_ACTIVITY, Action.DELETE)
            retention.set_policy(session, WORKSPACE, policy, "bench")
    long_ago = now() - timedelta(days=400)
    for start in range(0, len(due), 5000):
        with unit_of_work(built.sessions) as session:
            session.execute(
                update(Customer)
                .where(Customer.workspace_id == WORKSPACE, Customer.id.in_(due[start : start + 5000]))
                .values(updated_at=long_ago)
            )
    settle(built)
    started = time.perf_counter()
    for start in range(0, len(due), batch):
        with unit_of_work(built.sessions) as session:
            session.execute(
                delete(plain_customers).where(
                    plain_customers.c.workspace_id == WORKSPACE, plain_customers.c.id.in_(due[start : start + batch])
                )
            )
    baseline = time.perf_counter() - started
    settle(built)
    started = time.perf_counter()
    run = built.purge().run(WORKSPACE, batch)
    ours = time.perf_counter() - started
    assert run.erased == len(due), (run.erased, len(due))
    return len(due) / ours, len(due) / baseline, run.examined


def run(backend: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv_path = write_csv(folder / "customers.csv", args.count)
        with databases(backend, folder / "var") as settings, container(settings) as built:
            started = time.perf_counter()
            import_file(built.customers, built.vault, built.sessions, WORKSPACE, csv_path, batch_size=2000)
            plain.create_all(built.engine)
            catalogue(built)
            with built.sessions() as session:
                ids = list(session.scalars(select(Customer.id).where(Customer.workspace_id == WORKSPACE)))
            rng = random.Random(11)
            chosen = rng.sample(ids, WARM + args.subjects + args.due * args.rounds)
            subjects, rest = chosen[: WARM + args.subjects], chosen[WARM + args.subjects :]
            rounds = [rest[n * args.due : (n + 1) * args.due] for n in range(args.rounds)]
            for cid in subjects:
                history(built, cid, args.entries, args.events)
            audit.sequence_all(built.sessions, built.vault, WORKSPACE)
            plain_rows(built, ids, subjects, args.entries, args.events)
            print(f"    {backend}: {len(ids):,} customers stored and their histories written in "
                  f"{time.perf_counter() - started:.0f} s")  # fmt: skip
            samples = requests(built, subjects)
            purges = [purge(built, due, args.batch) for due in rounds]
    related = f"row + {args.entries + args.events:,} related rows"
    rows = [
        ("erasure", "erasure", "target p99 < 100 ms"),
        (f"plaintext DELETE ({related})", "plain erasure", ""),
        ("export (ZIP)", "export", "target p99 < 1,000 ms"),
        (f"plaintext SELECT + JSON ({related})", "plain export", ""),
    ]
    print(f"    {backend:<9}{'ms':<52}{'p50':>9}{'p99':>9}{'max':>9}")
    for label, key, target in rows:
        p50, p99, most = cuts(samples[key])
        print(f"    {'':<9}{label:<52}{p50:>9.1f}{p99:>9.1f}{most:>9.1f}  {target}")
    ratio = {kind: cuts(samples[kind])[1] / cuts(samples[f"plain {kind}"])[1] for kind in ("erasure", "export")}
    print(
        f"    {'':<9}p99 ratio to plaintext: erasure {ratio['erasure']:.0f}x, export {ratio['export']:.0f}x; "
        f"ZIP {statistics.median(samples['zip kB']):.0f} kB"
    )
    ours, plaintext = [p[0] for p in purges], [p[1] for p in purges]
    examined = ", ".join(f"{p[2]:,}" for p in purges)
    print(
        f"    {'':<9}retention purge, {args.due:,} due among {examined} examined, median of {len(purges)} rounds: "
        f"{statistics.median(ours):,.0f} customers/s (target >= 5,000/s; rounds {_rates(ours)}) | plaintext DELETE "
        f"by id, batches of {args.batch}: {statistics.median(plaintext):,.0f} rows/s (rounds {_rates(plaintext)})"
    )


def _rates(figures: list[float]) -> str:
    return " / ".join(f"{figure:,.0f}" for figure in figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000, help="customers stored")
    parser.add_argument("--subjects", type=int, default=30, help="customers erased and exported (timed)")
    parser.add_argument("--entries", type=int, default=1000, help="access-log entries about each of them")
    parser.add_argument("--events", type=int, default=20, help="consent events of each of them")
    parser.add_argument(
        "--due", type=int, default=5000, help="customers the retention purge finds due (a realistic share: 5 %%)"
    )
    parser.add_argument("--batch", type=int, default=5000, help="the purge's batch size (customers erased per commit)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="purges timed one after another, each of `--due` other customers"
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    print(
        f"data-subject rights, {args.count:,} customers stored; {args.subjects} customers with {args.entries:,} "
        f"access-log entries and {args.events} consent events each, exported then erased (ms)"
    )
    for backend in args.backends.split(","):
        run(backend, args)


if __name__ == "__main__":
    main()
