from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from obhut.vault.adapters.local import LocalKeyProvider
from obhut.vault.adapters.openbao import OpenBaoKeyProvider
from tests.vault.providers import openbao_server, softhsm_provider

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from obhut.vault.adapters.pkcs11 import Pkcs11KeyProvider
    from obhut.vault.ports import KeyProvider


@pytest.fixture(scope="session")
def softhsm_key_provider() -> Iterator[Pkcs11KeyProvider]:
    with softhsm_provider() as provider:
        yield provider


@pytest.fixture(scope="session")
def openbao_address() -> Iterator[tuple[str, str]]:
    """(address, root token) of one OpenBao dev server for the whole run."""
    with openbao_server() as server:
        yield server


@pytest.fixture
def openbao_key_provider(openbao_address: tuple[str, str]) -> Iterator[OpenBaoKeyProvider]:
    provider = OpenBaoKeyProvider(*openbao_address)
    yield provider
    provider.close()


@pytest.fixture(
    params=[
        pytest.param("local"),
        pytest.param("pkcs11", marks=pytest.mark.softhsm),
        pytest.param("openbao", marks=pytest.mark.openbao),
    ]
)
def key_provider(request: pytest.FixtureRequest, tmp_path: Path) -> KeyProvider:
    """Each KeyProvider implementation in turn, against the real component."""
    if request.param == "local":
        return LocalKeyProvider(tmp_path / "master.key")
    fixture = {"pkcs11": "softhsm_key_provider", "openbao": "openbao_key_provider"}[request.param]
    provider: KeyProvider = request.getfixturevalue(fixture)
    return provider


@pytest.fixture
def root_key_ref() -> str:
    """A key ref no other test uses (the SoftHSM token and the OpenBao server are shared)."""
    return f"test-{uuid.uuid4().hex[:12]}"
