"""The access log. Appends (entries written in batches, then sequenced into the Merkle tree with a signed
checkpoint per batch) against plain inserts of the same rows into an unhashed table; a customer read with
its log entry against the same read without one; verification of the whole log; inclusion proofs."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from multiprocessing import Queue
from pathlib import Path

import httpx
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert

from bench_policy import customer
from common import WORKSPACE, container, databases
from obhut.access import service as access
from obhut.access.rules import ALL_PERMISSIONS
from obhut.access.service import Principal
from obhut.api.app import create_app
from obhut.audit import rules, service
from obhut.audit.dependencies import Trail
from obhut.audit.service import Context, Event
from obhut.audit.tasks import default_workers, verify
from obhut.container import Container, build
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.kit.ids import new_id
from obhut.kit.settings import Settings

BATCH = 1000
CONTEXT = Context("staff:0190b3c2-0000-7000-8000-000000000001", "support_agent", "192.0.2.10", "crm/2.1", "req")
EVENT = Event(
    rules.action("api", "customer", "read"),
    "masked",
    categories=["contact", "identity"],
    requested=["email", "family_name", "given_name", "iban"],
    returned={"email": "masked", "family_name": "revealed", "given_name": "revealed", "iban": "withheld"},
    purpose="support",
    ticket="T-1001",
    count=1,
)
plain = MetaData()
plain_log = Table(
    "plain_log",
    plain,
    Column("workspace_id", String(63), primary_key=True),
    Column("entry_id", String(36), primary_key=True),
    *(Column(c, Text) for c in ("at", "actor", "role", "action", "outcome", "categories", "returned", "purpose")),
    Column("count", Integer),
)


def _plain_row() -> dict[str, object]:
    return {
        "workspace_id": WORKSPACE,
        "entry_id": new_id(),
        "at": now().isoformat(),
        "actor": CONTEXT.actor,
        "role": CONTEXT.role,
        "action": EVENT.action,
        "outcome": EVENT.outcome,
        "categories": "contact identity",
        "returned": "email=masked family_name=revealed",
        "purpose": EVENT.purpose,
        "count": 1,
    }


def appends(built: Container, count: int) -> tuple[float, float, float]:
    """(written/s, sequenced/s, plain inserts/s)."""
    plain.create_all(built.engine)
    started = time.perf_counter()
    for _ in range(count // BATCH):
        with unit_of_work(built.sessions) as session:
            service.record_many(session, None, WORKSPACE, CONTEXT, [EVENT] * BATCH)
    written = time.perf_counter() - started
    started = time.perf_counter()
    service.sequence_all(built.sessions, built.vault, WORKSPACE)
    sequenced = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(count // BATCH):
        with unit_of_work(built.sessions) as session:
            session.execute(insert(plain_log), [_plain_row() for _ in range(BATCH)])
    baseline = time.perf_counter() - started
    return count / written, count / sequenced, count / baseline


def _sequencer(settings: Settings, total: int, signals: Queue[float]) -> None:
    """Another process, as `obhut worker` is beside `obhut serve`: sequences until `total` entries are in,
    looking again every 10 ms while nothing waits."""
    built = build(settings)
    try:
        signals.put(0.0)  # ready
        done = 0
        while done < total:
            sequenced = service.sequence(built.sessions, built.vault, WORKSPACE)
            done += sequenced
            if not sequenced:
                time.sleep(0.01)
        signals.put(time.perf_counter())
    finally:
        built.close()


def pipeline(built: Container, count: int) -> float:
    """Entries/s written here and sequenced in another process at the same time, from the first write until
    the last entry is in the tree (perf_counter is the same clock in both processes)."""
    service.sequence_all(built.sessions, built.vault, WORKSPACE)  # nothing waiting from before
    batches = count // BATCH
    spawn = multiprocessing.get_context("spawn")
    signals: Queue[float] = spawn.Queue()
    sequencer = spawn.Process(target=_sequencer, args=(built.settings, batches * BATCH, signals))
    sequencer.start()
    try:
        signals.get(timeout=120)  # its imports and start-up are not what is measured
        started = time.perf_counter()
        for _ in range(batches):
            with unit_of_work(built.sessions) as session:
                service.record_many(session, None, WORKSPACE, CONTEXT, [EVENT] * BATCH)
        end = signals.get(timeout=600)
    finally:
        sequencer.join(timeout=10)
        if sequencer.is_alive():
            sequencer.kill()
    return batches * BATCH / (end - started)


def verification(built: Container, *, deep: bool, workers: int | None = None, passes: int = 3) -> list[float]:
    """Entries/s of each of `passes` verifications of the whole log; `workers` None: as many processes as verify
    finds safe (as `obhut audit verify` does)."""
    rates = []
    for _ in range(passes):
        with built.sessions() as session:
            keyring = built.vault.open(session, WORKSPACE)
            started = time.perf_counter()
            report = verify(session, keyring, WORKSPACE, deep=deep, workers=workers)
            elapsed = time.perf_counter() - started
        assert report.ok, report.problems
        rates.append(report.entries / elapsed)
    return rates


def _processes(count: int) -> str:
    return "one process" if count == 1 else f"{count} processes"


def spread(rates: list[float]) -> str:
    """The median, and the range when there is more than one."""
    median = f"{statistics.median(rates):,.0f}/s"
    return median if len(rates) == 1 else f"{median} ({min(rates):,.0f}-{max(rates):,.0f})"


def proofs(built: Container, size: int) -> tuple[float, float]:
    """p50 and p99 of an inclusion proof (ms) against the newest checkpoint."""
    samples = []
    with built.sessions() as session:
        for n in range(2000):
            started = time.perf_counter()
            service.inclusion(session, WORKSPACE, (n * 7919) % size, None)
            samples.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


def _cuts(samples: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
    out = {}
    for mode, values in samples.items():
        cuts = statistics.quantiles(values, n=100)
        out[mode] = (cuts[49], cuts[98])
    return out


def _in_turns(modes: list[str], read: Callable[[int, str], float], reads: int) -> dict[str, tuple[float, float]]:
    """p50 and p99 (ms) of each mode, after a warm-up; the modes take turns in random order, so that all see
    the same machine noise."""
    for n in range(300):
        for mode in modes:
            read(n, mode)
    samples: dict[str, list[float]] = {mode: [] for mode in modes}
    for n in range(reads):
        for mode in random.sample(modes, len(modes)):
            samples[mode].append(read(n, mode))
    return _cuts(samples)


def _stored(built: Container) -> list[str]:
    with unit_of_work(built.sessions) as session:
        return [built.customers.create(session, WORKSPACE, customer(n)).id for n in range(500)]


def logged_reads(built: Container, ids: list[str], reads: int) -> dict[str, tuple[float, float]]:
    """The service call alone: the read's own transaction, with and without its entry."""
    with unit_of_work(built.sessions) as session:
        principal = Principal(WORKSPACE, CONTEXT.actor, "support_agent", ALL_PERMISSIONS, frozenset({"mfa"}))
        plan = built.policies.plan(session, principal, "support", None)

    def read(n: int, mode: str) -> float:
        started = time.perf_counter()
        with unit_of_work(built.sessions) as session:
            keyring = built.vault.open(session, WORKSPACE)
            view = built.customers.view(session, WORKSPACE, ids[n % len(ids)], plan, keyring)
            if mode == "with log":
                trail = Trail(session, built.vault, WORKSPACE, CONTEXT)
                trail.viewed("read", plan, [(view.id, view.disclosure)], keyring=keyring)
            elif mode == "any write":  # the least a durable entry in the same transaction can cost
                session.execute(insert(plain_log), [{"workspace_id": WORKSPACE, "entry_id": new_id()}])
        return (time.perf_counter() - started) * 1000

    return _in_turns(["with log", "without", "any write"], read, reads)


def api_reads(built: Container, ids: list[str], reads: int) -> dict[str, tuple[float, float]]:
    """`GET /api/v1/workspaces/{ws}/customers/{id}?purpose=support` through the whole application (token check,
    policy plan, consent, read, JSON; the endpoint in a worker thread, as under uvicorn), in process without a
    socket. "without": the same app, its trail's `record` swapped for one that writes nothing while that request
    runs (one request at a time, so no other sees it); the entry is all that differs."""
    with unit_of_work(built.sessions) as session:
        token = access.create_admin_token(session, "bench").token
    transport = httpx.ASGITransport(app=create_app(container=built))
    client = httpx.AsyncClient(
        transport=transport, base_url="http://bench", headers={"Authorization": f"Bearer {token}"}
    )
    records = {"with log": Trail.record, "without": lambda *_args, **_kwargs: None}
    loop = asyncio.new_event_loop()

    def read(n: int, mode: str) -> float:
        Trail.record = records[mode]  # type: ignore[method-assign]
        started = time.perf_counter()
        answer = loop.run_until_complete(
            client.get(f"/api/v1/workspaces/{WORKSPACE}/customers/{ids[n % len(ids)]}", params={"purpose": "support"})
        )
        elapsed = (time.perf_counter() - started) * 1000
        assert answer.status_code == 200, answer.text
        return elapsed

    try:
        return _in_turns(list(records), read, reads)
    finally:
        Trail.record = records["with log"]  # type: ignore[method-assign]
        loop.run_until_complete(client.aclose())
        loop.close()


def _ratios(figures: dict[str, tuple[float, float]], measured: list[str]) -> None:
    for name, (p50, p99) in figures.items():
        print(f"    {name:<10} p50 {p50:.3f}  p99 {p99:.3f}")
    for name in measured:
        p50, p99 = (figures[name][i] / figures["without"][i] for i in (0, 1))
        print(f"    {name}: ratio to without p50 {p50:.2f}, p99 {p99:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000, help="entries appended per backend")
    parser.add_argument("--proof-size", type=int, default=1_000_000, help="log size for the proof timing (SQLite)")
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    print("access-log appends, batches of 1,000 (target >= 30,000/s); baseline: plain inserts of the same rows")
    for backend in args.backends.split(","):
        with (
            tempfile.TemporaryDirectory() as tmp,
            databases(backend, Path(tmp)) as settings,
            container(settings) as built,
        ):
            written, sequenced, baseline = appends(built, args.count)
            combined = 1 / (1 / written + 1 / sequenced)
            print(
                f"    {backend:<9} written {written:>9,.0f}/s  sequenced+signed {sequenced:>9,.0f}/s  "
                f"both, one after the other {combined:>9,.0f}/s  | plain inserts {baseline:>9,.0f}/s"
            )
            print(
                f"    {backend:<9} both at once, the sequencer in a process of its own (serve and worker): "
                f"{pipeline(built, args.count):>9,.0f}/s"
            )
            with built.sessions() as session:
                workers = {d: default_workers(session, deep=d) for d in (False, True)}
                latest = service.head(session, WORKSPACE)
            entries = latest.size if latest else 0
            print(f"    {backend:<9} verification of {entries:,} entries, median of 3 passes (range):")
            for deep, label in ((False, "tree"), (True, "with every entry's columns")):
                rates = [f"{_processes(workers[deep])} {spread(verification(built, deep=deep))}"]
                if workers[deep] > 1:  # beside it, the same in one process
                    rates.append(f"{_processes(1)} {spread(verification(built, deep=deep, workers=1))}")
                target = " (target >= 300,000/s)" if not deep else ""
                print(f"    {'':<9}   {label}: {' | '.join(rates)}{target}")
            if backend == "sqlite":
                ids = _stored(built)
                figures = logged_reads(built, ids, args.reads), api_reads(built, ids, args.reads)
    service_figures, api_figures = figures
    print(
        "customer read with its log entry vs the same read without (SQLite, ms); target <= 1.2x. In process: the "
        "service call in its own transaction; 'any write': the same with a one-row insert into a plain table "
        "instead, the floor of any entry written in the read's transaction"
    )
    _ratios(service_figures, ["with log", "any write"])
    print("    through the API (GET .../customers/{id}?purpose=support, in process, no socket), the app as it is vs")
    print("    the same app with its trail recording nothing:")
    _ratios(api_figures, ["with log"])
    with (
        tempfile.TemporaryDirectory() as tmp,
        databases("sqlite", Path(tmp)) as settings,
        container(settings) as built,
    ):
        appends(built, args.proof_size)
        p50, p99 = proofs(built, args.proof_size)
        print(
            f"inclusion proof with {args.proof_size:,} entries (SQLite): p50 {p50:.2f} ms, p99 {p99:.2f} ms "
            "(target < 5 ms)"
        )


if __name__ == "__main__":
    main()
