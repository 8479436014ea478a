"""The whole key lifecycle with the root key in a real HSM (SoftHSM2) or a real OpenBao server, and a
workspace that brings its own key material."""

from __future__ import annotations

import os
import uuid

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
from sqlalchemy import select

from obhut.container import Container
from obhut.customers.service import CustomerService
from obhut.kit.db import unit_of_work
from obhut.vault import tasks
from obhut.vault.cache import KeyCache
from obhut.vault.errors import KeyRevokedError, SubjectShreddedError
from obhut.vault.models import DataKey, KeyVersion
from obhut.vault.ports import KeyProvider, KeyUnusableError, WrapItem
from obhut.vault.service import Vault
from obhut.workspaces import service as workspaces
from tests.conftest import jane, reveal_all


@pytest.fixture(params=["pkcs11", "openbao"])
def held_provider(request: pytest.FixtureRequest) -> KeyProvider:
    fixture = "softhsm_key_provider" if request.param == "pkcs11" else "openbao_key_provider"
    provider: KeyProvider = request.getfixturevalue(fixture)
    return provider


def _vault(container: Container, provider: KeyProvider) -> Vault:
    providers = {provider.name: provider, "local": container.vault.provider("local")}
    return Vault(providers, container.vault._keystore, KeyCache(300), shards=8)


class TestHoldYourOwnKey:
    def test_create_read_rotate_shred_revoke(self, container: Container, held_provider: KeyProvider) -> None:
        vault, ws = _vault(container, held_provider), f"hyok-{uuid.uuid4().hex[:8]}"
        customers = CustomerService(vault)
        with unit_of_work(container.sessions) as session:
            workspaces.create(session, vault, ws, key_provider=held_provider.name)
            ids = [
                customers.create(session, ws, jane(external_ref=f"R-{n}", email=f"k{n}@example.com")).id
                for n in range(6)
            ]
        with unit_of_work(container.sessions) as session:
            assert [r.id for r in customers.lookup(session, ws, "email", "K3@example.com", reveal_all())] == [ids[3]]

        report = tasks.rotate(vault, container.sessions, ws, batch_size=4)
        assert (report.to_version, report.rewrapped) == (2, 6)
        with unit_of_work(container.sessions) as session:
            assert set(session.scalars(select(DataKey.key_version).where(DataKey.workspace_id == ws))) == {2}
            customers.shred(session, ws, ids[0])
        with unit_of_work(container.sessions) as session:
            with pytest.raises(SubjectShreddedError):
                customers.get(session, ws, ids[0])
            assert customers.get(session, ws, ids[1]).values["email"] == "k1@example.com"
            vault.revoke(session, ws)
        with unit_of_work(container.sessions) as session, pytest.raises(KeyRevokedError):
            customers.get(session, ws, ids[1])
        with pytest.raises(KeyUnusableError):  # the HSM / server itself refuses, not just our bookkeeping
            held_provider.wrap(f"obhut-{ws}-v2", [WrapItem(os.urandom(32), b"aad")])
        with unit_of_work(container.sessions) as session:
            vault.restore(session, ws)
        with unit_of_work(container.sessions) as session:
            assert customers.get(session, ws, ids[5]).values["family_name"] == "Musterfrau"

    def test_a_key_disabled_in_the_provider_stops_reads(self, container: Container, held_provider: KeyProvider) -> None:
        vault, ws = _vault(container, held_provider), f"hyok-{uuid.uuid4().hex[:8]}"
        with unit_of_work(container.sessions) as session:
            workspaces.create(session, vault, ws, key_provider=held_provider.name)
            customer_id = CustomerService(vault).create(session, ws, jane()).id
        held_provider.disable(f"obhut-{ws}-v1")  # the key administrator pulls the plug in their own system
        cold = _vault(container, held_provider)  # another process, with nothing cached
        with unit_of_work(container.sessions) as session, pytest.raises(KeyUnusableError):
            CustomerService(cold).get(session, ws, customer_id)
        held_provider.enable(f"obhut-{ws}-v1")


class TestBringYourOwnKey:
    def test_imported_material_becomes_the_root_key(self, container: Container) -> None:
        provider = container.vault.provider("local")
        public = serialization.load_pem_public_key(provider.wrapping_public_key_pem().encode())
        assert isinstance(public, rsa.RSAPublicKey)
        material, ephemeral = os.urandom(32), os.urandom(32)
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        blob = public.encrypt(ephemeral, oaep) + aes_key_wrap_with_padding(ephemeral, material)
        with unit_of_work(container.sessions) as session:
            workspaces.create(session, container.vault, "byok", imported_key=blob)
            customer_id = container.customers.create(session, "byok", jane()).id
        with unit_of_work(container.sessions) as session:
            assert container.customers.get(session, "byok", customer_id).values["given_name"] == "Jane"
            version = session.get(KeyVersion, ("byok", 1))
            assert version is not None
            assert version.origin == "imported"

    def test_garbage_is_refused_and_nothing_is_created(self, container: Container) -> None:
        with unit_of_work(container.sessions) as session, pytest.raises(KeyUnusableError, match="wrapping-key"):
            workspaces.create(session, container.vault, "byok", imported_key=os.urandom(600))
        with unit_of_work(container.sessions) as session:
            assert session.get(KeyVersion, ("byok", 1)) is None
