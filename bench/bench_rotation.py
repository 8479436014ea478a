"""Key rotation: data keys re-wrapped per second by `obhut keys rotate`, with each key provider. The
baseline is a full re-encryption of every field (what a rotation without a key hierarchy would cost)."""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from common import databases
from obhut.customers.service import CustomerService
from obhut.kit.db import build_engine, session_factory, unit_of_work
from obhut.kit.settings import Settings
from obhut.vault import tasks
from obhut.vault.cache import KeyCache
from obhut.vault.ports import KeyProvider
from obhut.vault.service import Vault
from obhut.workspaces import service as workspaces
from providers import local_provider, openbao_provider, softhsm_token

WORKSPACE = "rotate"


def populate(vault: Vault, settings: Settings, count: int) -> Any:
    sessions = session_factory(build_engine(settings.resolved_database_url))
    customers = CustomerService(vault)
    with unit_of_work(sessions) as session:
        workspaces.create(session, vault, WORKSPACE, key_provider=next(iter(vault._providers)))  # noqa: SLF001
    for start in range(0, count, 5000):
        with unit_of_work(sessions) as session:
            keyring = vault.open(session, WORKSPACE)
            batch = [
                {"family_name": "Muster", "email": f"r{n}@example.com", "notes": "Invented"}
                for n in range(start, min(count, start + 5000))
            ]
            customers.add_many(session, keyring, batch)
    return sessions


def run(name: str, provider_cm: AbstractContextManager[KeyProvider], count: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, provider_cm as provider, databases("sqlite", Path(tmp)) as settings:
        keystore = session_factory(build_engine(settings.resolved_keystore_url))
        vault = Vault({provider.name: provider}, keystore, KeyCache(300), shards=settings.key_shards)
        sessions = populate(vault, settings, count)
        start = time.perf_counter()
        report = tasks.rotate(vault, sessions, WORKSPACE, batch_size=5000)
        elapsed = time.perf_counter() - start
        assert report.rewrapped == count, report
        print(f"{name:<18} {count:>9,} {count / elapsed:>14,.0f}")
        return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--others", type=int, default=100_000, help="customers for the HSM and OpenBao runs")
    args = parser.parse_args()
    shards = Settings().key_shards
    print(
        f"key rotation on SQLite ({shards:,} shard keys per version, made by the rotation and counted in its time); "
        "target: >= 20,000 data keys/s with local keys"
    )
    print(f"{'provider':<18} {'data keys':>9} {'re-wrapped/s':>14}")
    run("local key file", local_provider(), args.count)
    run("pkcs11 (SoftHSM2)", softhsm_token(), args.others)
    run("openbao (Transit)", openbao_provider(), args.others)
    print(
        "the provider is called once per batch of shard keys, not per data key; it wraps every shard key of the new "
        "version and unwraps every one of the old, which is what an HSM or OpenBao adds"
    )


if __name__ == "__main__":
    main()
