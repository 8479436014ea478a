"""The port every key provider (key file, HSM, key-management server) plugs into.

A provider holds *root keys* (one per workspace and key version). Obhut never sees their material once
they exist: it asks the provider to wrap and unwrap small secrets (the workspace's shard and index keys)
with AES-GCM bound to associated data. Calls take batches, so a rotation or a cold cache costs one
round trip per batch instead of one per secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol, runtime_checkable

from obhut.kit.errors import ObhutError, ServiceUnavailableError


@dataclass(frozen=True)
class WrapItem:
    """A secret (or wrapped blob) with the associated data it is bound to."""

    data: bytes
    aad: bytes


class KeyProviderError(ServiceUnavailableError):
    """The provider could not be reached or failed; retrying later may help."""

    kind = "key-provider-unavailable"
    title = "Key provider unavailable"


class KeyUnusableError(ObhutError):
    """The provider refuses the key: disabled, destroyed, unknown, or the data does not authenticate."""

    status = HTTPStatus.LOCKED
    kind = "key-unusable"
    title = "Key cannot be used"


@runtime_checkable
class KeyProvider(Protocol):
    """A source of root keys. Implementations: `local` (key file), `pkcs11` (HSM), `openbao` (Transit)."""

    name: str

    def create_key(self, ref: str) -> None:
        """Generate a new AES-256 root key inside the provider under `ref` (hold your own key)."""

    def wrapping_public_key_pem(self) -> str:
        """PEM RSA public key that key material for `import_key` must be wrapped for."""

    def import_key(self, ref: str, wrapped_material: bytes) -> None:
        """Bring your own key: `wrapped_material` is RSA-OAEP(SHA-256) of an ephemeral AES-256 key followed
        by the AES-256 key material wrapped with it by AES key wrap with padding (RFC 5649), the format of
        PKCS#11 CKM_RSA_AES_KEY_WRAP and of OpenBao/Vault Transit key import."""

    def wrap(self, ref: str, items: Sequence[WrapItem]) -> list[bytes]:
        """AES-GCM encrypt each item's data under the root key, binding its aad; one result per item."""

    def unwrap(self, ref: str, items: Sequence[WrapItem]) -> list[bytes]:
        """Reverse of `wrap`; raises KeyUnusableError if the key is disabled/destroyed or aad differs."""

    def disable(self, ref: str) -> None:
        """Make the key unusable without destroying it (revocation); `enable` undoes it."""

    def enable(self, ref: str) -> None: ...

    def destroy(self, ref: str) -> None:
        """Destroy the key for good. Everything wrapped under it becomes unrecoverable."""

    def exists(self, ref: str) -> bool: ...
