"""The KeyProvider contract, run against every provider with its real engine: a key file, a SoftHSM2
token, an OpenBao dev server."""

from __future__ import annotations

import base64
import functools
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import hvac
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from obhut.kit.errors import ConfigurationError
from obhut.vault.adapters.local import LocalKeyProvider
from obhut.vault.ports import KeyProvider, KeyProviderError, KeyUnusableError, WrapItem
from tests.vault.providers import softhsm_provider

if TYPE_CHECKING:
    from pathlib import Path

    from obhut.vault.adapters.openbao import OpenBaoKeyProvider
    from obhut.vault.adapters.pkcs11 import Pkcs11KeyProvider

BATCH = 600  # past OpenBao's 200-item chunk, so several requests make one call


def secrets_batch(count: int = BATCH) -> list[WrapItem]:
    return [WrapItem(os.urandom(32), f"ws-1|secret-{n}|v1".encode()) for n in range(count)]


def wrapped_items(wrapped: list[bytes], items: list[WrapItem]) -> list[WrapItem]:
    return [WrapItem(blob, item.aad) for blob, item in zip(wrapped, items, strict=True)]


def wrap_for_import(public_pem: str, material: bytes) -> bytes:
    """What a key owner sends for BYOK: RSA-OAEP(SHA-256) of an ephemeral AES key, then RFC 5649 wrap."""
    public = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == 4096
    ephemeral = os.urandom(32)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    return public.encrypt(ephemeral, oaep) + aes_key_wrap_with_padding(ephemeral, material)


@functools.cache
def stranger_public_pem() -> str:
    """An RSA-4096 public key that belongs to no provider."""
    public = rsa.generate_private_key(public_exponent=65537, key_size=4096).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode()


def gcm_parts(wrapped: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext+tag) of a wrapped value; Transit's is 'vault:v1:' + base64(nonce + ciphertext)."""
    raw = base64.b64decode(wrapped.split(b":", 2)[2]) if wrapped.startswith(b"vault:v") else wrapped
    return raw[:12], raw[12:]


class TestKeyProviderContract:
    def test_is_a_key_provider(self, key_provider: KeyProvider) -> None:
        assert isinstance(key_provider, KeyProvider)

    def test_a_batch_round_trips(self, key_provider: KeyProvider, root_key_ref: str) -> None:
        key_provider.create_key(root_key_ref)
        items = secrets_batch()
        wrapped = key_provider.wrap(root_key_ref, items)
        assert len(wrapped) == BATCH
        assert len(set(wrapped)) == BATCH
        assert all(item.data not in blob for blob, item in zip(wrapped, items, strict=True))
        assert key_provider.unwrap(root_key_ref, wrapped_items(wrapped, items)) == [i.data for i in items]

    def test_concurrent_batches_round_trip(self, key_provider: KeyProvider, root_key_ref: str) -> None:
        key_provider.create_key(root_key_ref)

        def round_trip(_: int) -> bool:
            items = secrets_batch(50)
            wrapped = key_provider.wrap(root_key_ref, items)
            return key_provider.unwrap(root_key_ref, wrapped_items(wrapped, items)) == [i.data for i in items]

        with ThreadPoolExecutor(max_workers=4) as pool:
            assert all(pool.map(round_trip, range(8)))

    def test_wrong_associated_data_is_refused(self, key_provider: KeyProvider, root_key_ref: str) -> None:
        key_provider.create_key(root_key_ref)
        [wrapped] = key_provider.wrap(root_key_ref, [WrapItem(b"k" * 32, b"ws-1|customer-7|email")])
        with pytest.raises(KeyUnusableError, match="failed to authenticate"):
            key_provider.unwrap(root_key_ref, [WrapItem(wrapped, b"ws-1|customer-8|email")])

    def test_one_bad_item_fails_the_batch(self, key_provider: KeyProvider, root_key_ref: str) -> None:
        key_provider.create_key(root_key_ref)
        items = secrets_batch(5)
        moved = wrapped_items(key_provider.wrap(root_key_ref, items), items)
        moved[3] = WrapItem(moved[3].data, b"elsewhere")
        with pytest.raises(KeyUnusableError):
            key_provider.unwrap(root_key_ref, moved)

    def test_a_secret_wrapped_under_another_key_is_refused(self, key_provider: KeyProvider, root_key_ref: str) -> None:
        other = f"{root_key_ref}-other"
        key_provider.create_key(root_key_ref)
        key_provider.create_key(other)
        items = secrets_batch(3)
        wrapped = key_provider.wrap(other, items)
        with pytest.raises(KeyUnusableError):
            key_provider.unwrap(root_key_ref, wrapped_items(wrapped, items))

    def test_disable_refuses_both_ways_and_enable_restores(self, key_provider: KeyProvider, root_key_ref: str) -> None:
        key_provider.create_key(root_key_ref)
        items = secrets_batch(3)
        wrapped = wrapped_items(key_provider.wrap(root_key_ref, items), items)

        key_provider.disable(root_key_ref)
        assert key_provider.exists(root_key_ref)
        with pytest.raises(KeyUnusableError, match="disabled"):
            key_provider.wrap(root_key_ref, items)
        with pytest.raises(KeyUnusableError, match="disabled"):
            key_provider.unwrap(root_key_ref, wrapped)

        key_provider.enable(root_key_ref)
        assert key_provider.unwrap(root_key_ref, wrapped) == [i.data for i in items]
        assert len(key_provider.wrap(root_key_ref, items)) == 3

    def test_destroy_makes_everything_unrecoverable(self, key_provider: KeyProvider, root_key_ref: str) -> None:
        key_provider.create_key(root_key_ref)
        items = secrets_batch(3)
        wrapped = wrapped_items(key_provider.wrap(root_key_ref, items), items)

        key_provider.destroy(root_key_ref)
        assert not key_provider.exists(root_key_ref)
        with pytest.raises(KeyUnusableError):
            key_provider.unwrap(root_key_ref, wrapped)
        with pytest.raises(KeyUnusableError):
            key_provider.wrap(root_key_ref, items)
        assert not key_provider.exists(root_key_ref)  # wrapping did not bring it back
        key_provider.destroy(root_key_ref)  # a second destroy is harmless

    def test_an_unknown_ref_is_unusable_and_stays_unknown(self, key_provider: KeyProvider, root_key_ref: str) -> None:
        with pytest.raises(KeyUnusableError, match="does not exist"):
            key_provider.wrap(root_key_ref, secrets_batch(1))
        with pytest.raises(KeyUnusableError):
            key_provider.disable(root_key_ref)
        assert not key_provider.exists(root_key_ref)

    def test_creating_an_existing_ref_fails(self, key_provider: KeyProvider, root_key_ref: str) -> None:
        key_provider.create_key(root_key_ref)
        items = secrets_batch(2)
        wrapped = wrapped_items(key_provider.wrap(root_key_ref, items), items)
        with pytest.raises(KeyProviderError, match="already exists"):
            key_provider.create_key(root_key_ref)
        assert key_provider.unwrap(root_key_ref, wrapped) == [i.data for i in items]  # the key was kept

    def test_imported_material_is_used_as_given(self, key_provider: KeyProvider, root_key_ref: str) -> None:
        material = AESGCM.generate_key(bit_length=256)
        pem = key_provider.wrapping_public_key_pem()
        twin = f"{root_key_ref}-twin"
        key_provider.import_key(root_key_ref, wrap_for_import(pem, material))
        key_provider.import_key(twin, wrap_for_import(pem, material))  # fresh ephemeral key each time

        items = secrets_batch(3)
        wrapped = key_provider.wrap(root_key_ref, items)
        assert key_provider.unwrap(twin, wrapped_items(wrapped, items)) == [i.data for i in items]
        nonce, ciphertext = gcm_parts(wrapped[0])
        assert AESGCM(material).decrypt(nonce, ciphertext, items[0].aad) == items[0].data

    def test_importing_over_an_existing_ref_fails(self, key_provider: KeyProvider, root_key_ref: str) -> None:
        key_provider.create_key(root_key_ref)
        blob = wrap_for_import(key_provider.wrapping_public_key_pem(), os.urandom(32))
        with pytest.raises(KeyProviderError, match="already exists"):
            key_provider.import_key(root_key_ref, blob)

    def test_a_tampered_import_is_refused(self, key_provider: KeyProvider, root_key_ref: str) -> None:
        blob = bytearray(wrap_for_import(key_provider.wrapping_public_key_pem(), os.urandom(32)))
        blob[-1] ^= 1
        with pytest.raises(KeyUnusableError, match="could not"):
            key_provider.import_key(root_key_ref, bytes(blob))
        assert not key_provider.exists(root_key_ref)

    def test_material_wrapped_for_another_key_is_refused(self, key_provider: KeyProvider, root_key_ref: str) -> None:
        with pytest.raises(KeyUnusableError):
            key_provider.import_key(root_key_ref, wrap_for_import(stranger_public_pem(), os.urandom(32)))
        assert not key_provider.exists(root_key_ref)


class TestTheEngineEnforcesDisable:
    """The refusal after `disable` comes from the token or server, not only from the adapter's checks."""

    @pytest.mark.softhsm
    def test_the_token_refuses_a_handle_looked_up_before_disable(
        self, softhsm_key_provider: Pkcs11KeyProvider, root_key_ref: str
    ) -> None:
        softhsm_key_provider.create_key(root_key_ref)
        items = secrets_batch(2)
        wrapped = wrapped_items(softhsm_key_provider.wrap(root_key_ref, items), items)
        with softhsm_provider() as second:
            assert second.unwrap(root_key_ref, wrapped) == [i.data for i in items]  # caches its handle
            softhsm_key_provider.disable(root_key_ref)
            with pytest.raises(KeyUnusableError, match="disabled"):
                second.unwrap(root_key_ref, wrapped)  # CKR_KEY_FUNCTION_NOT_PERMITTED from SoftHSM2
            softhsm_key_provider.enable(root_key_ref)
            assert second.unwrap(root_key_ref, wrapped) == [i.data for i in items]

    @pytest.mark.openbao
    def test_the_server_refuses_a_soft_deleted_key(
        self, openbao_key_provider: OpenBaoKeyProvider, openbao_address: tuple[str, str], root_key_ref: str
    ) -> None:
        openbao_key_provider.create_key(root_key_ref)
        [wrapped] = openbao_key_provider.wrap(root_key_ref, [WrapItem(b"k" * 32, b"aad")])
        transit = hvac.Client(url=openbao_address[0], token=openbao_address[1]).secrets.transit
        aad = base64.b64encode(b"aad").decode()

        openbao_key_provider.disable(root_key_ref)
        with pytest.raises(hvac.exceptions.InvalidRequest, match="soft-deleted"):
            transit.decrypt_data(root_key_ref, ciphertext=wrapped.decode(), associated_data=aad)

        openbao_key_provider.enable(root_key_ref)
        answer = transit.decrypt_data(root_key_ref, ciphertext=wrapped.decode(), associated_data=aad)
        assert base64.b64decode(answer["data"]["plaintext"]) == b"k" * 32


class TestLocalKeyFile:
    def test_a_key_file_others_can_read_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "master.key"
        LocalKeyProvider(path).create_key("root-1")
        path.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)  # 0644
        with pytest.raises(ConfigurationError, match="chmod 600"):
            LocalKeyProvider(path).exists("root-1")
