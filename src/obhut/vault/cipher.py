"""The primitives the vault uses, all from `cryptography` and the standard library."""

from __future__ import annotations

import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from obhut.vault.rules import BLIND_INDEX_BYTES, FIELD_FORMAT_V1

_NONCE = 12
_HEADER = bytes([FIELD_FORMAT_V1])


class DecryptionError(Exception):
    """Ciphertext did not authenticate: wrong key, or moved to another place (associated data differs)."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


class Sealer:
    """AES-256-GCM with a random 96-bit nonce; output = format byte + nonce + ciphertext + tag."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return _HEADER + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def seal_many(self, plaintexts: Sequence[bytes], aads: Sequence[bytes]) -> list[bytes]:
        """`seal` for several values: the nonces are consecutive slices of one read from the system's
        random source (as random as separate reads, without a system call per field)."""
        nonces = os.urandom(_NONCE * len(plaintexts))
        encrypt = self._aead.encrypt
        out = []
        for start, plaintext, aad in zip(range(0, len(nonces), _NONCE), plaintexts, aads, strict=True):
            nonce = nonces[start : start + _NONCE]
            out.append(_HEADER + nonce + encrypt(nonce, plaintext, aad))
        return out

    def open(self, blob: bytes, aad: bytes) -> bytes:
        if blob[:1] != _HEADER:
            raise DecryptionError("unknown ciphertext format")
        try:
            return self._aead.decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], aad)
        except InvalidTag as error:
            raise DecryptionError("ciphertext does not authenticate in this place") from error


def derive_key(root: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(root)


def blind_index(key: bytes, normalised: str) -> bytes:
    return hmac.digest(key, normalised.encode(), "sha256")[:BLIND_INDEX_BYTES]


class BlindIndexer:
    """`blind_index` under one key, for many values: the keyed HMAC state is set up once and copied per
    value, which halves the cost of a bulk import's indexes. Same output as `blind_index`."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod="sha256")

    def __call__(self, normalised: str) -> bytes:
        mac = self._keyed.copy()
        mac.update(normalised.encode())
        return mac.digest()[:BLIND_INDEX_BYTES]


class Signer:
    """Ed25519 from a 32-byte seed: the same seed always gives the same key pair."""

    __slots__ = ("_key", "public_key")

    def __init__(self, seed: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = self._key.public_key().public_bytes_raw()

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether `signature` is this key's over `message` (a signed link coming back, for one)."""
        return signature_valid(self.public_key, message, signature)

    def __repr__(self) -> str:
        return f"Signer(public={self.public_key.hex()[:16]}...)"


def signature_valid(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
