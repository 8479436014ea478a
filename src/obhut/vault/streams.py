"""Files encrypted as a stream of AES-256-GCM chunks under a one-off key (backups).

A file is a magic header, then chunks: a 4-byte length and a sealed blob (`cipher.Sealer`). Each chunk's
associated data binds the backup id, the file's name, the chunk's index and whether it is the last one, so
a chunk altered, dropped, reordered, moved to another file or another backup, or a file cut at a chunk
boundary, fails to authenticate. Two keys are derived from the backup key: one for the chunks, one for the
HMAC over the backup's manifest.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import BinaryIO

from obhut.kit.errors import ObhutError
from obhut.vault.cipher import DecryptionError, Sealer, derive_key, new_key

CHUNK_BYTES = 1 << 20
MAGIC = b"OBHUTBK1"
_LENGTH = 4
_OVERHEAD = 1 + 12 + 16  # format byte, nonce, tag (cipher.Sealer)

Progress = Callable[[int], None]
"""Called with the number of plaintext bytes just handled."""


class StreamError(ObhutError):
    """An encrypted file (or the manifest) does not authenticate; the message names the file."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    kind = "backup-damaged"
    title = "Backup damaged"


@dataclass(frozen=True)
class SealedFile:
    plaintext_size: int
    chunks: int
    sha256: str
    """Of the encrypted file, hex."""


def _chunk_aad(backup_id: str, name: str, index: int, *, final: bool) -> bytes:
    return b"\x00".join(
        (b"obhut-backup-chunk-v1", backup_id.encode(), name.encode(), index.to_bytes(8, "big"), bytes([final]))
    )


class BackupKey:
    """The fresh random AES-256 key of one backup; wrap `material` with a key provider to keep it."""

    __slots__ = ("_mac_key", "_sealer", "backup_id", "material")

    def __init__(self, backup_id: str, material: bytes) -> None:
        self.backup_id = backup_id
        self.material = material
        self._sealer = Sealer(derive_key(material, b"obhut-backup-chunks-v1"))
        self._mac_key = derive_key(material, b"obhut-backup-manifest-v1")

    @classmethod
    def new(cls, backup_id: str) -> BackupKey:
        return cls(backup_id, new_key())

    def __repr__(self) -> str:
        return f"BackupKey(backup_id={self.backup_id!r})"

    def mac(self, message: bytes) -> str:
        return hmac.digest(self._mac_key, message, "sha256").hex()

    def mac_valid(self, message: bytes, mac: str) -> bool:
        return hmac.compare_digest(self.mac(message), mac)

    def seal_file(
        self, name: str, source: Path, target: Path, progress: Progress | None = None, chunk_bytes: int = CHUNK_BYTES
    ) -> SealedFile:
        """Encrypt `source` into `target` (created); `name` is bound into every chunk."""
        digest, size, index = hashlib.sha256(MAGIC), 0, 0
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # owner only, like the databases
        with source.open("rb") as plain, os.fdopen(descriptor, "wb") as out:
            out.write(MAGIC)
            chunk = plain.read(chunk_bytes)
            while True:
                following = plain.read(chunk_bytes) if chunk else b""
                final = not following
                blob = self._sealer.seal(chunk, _chunk_aad(self.backup_id, name, index, final=final))
                record = len(blob).to_bytes(_LENGTH, "big") + blob
                out.write(record)
                digest.update(record)
                size, index = size + len(chunk), index + 1
                if progress is not None:
                    progress(len(chunk))
                if final:
                    break
                chunk = following
        return SealedFile(size, index, digest.hexdigest())

    def open_file(self, name: str, source: Path, target: Path, chunks: int, progress: Progress | None = None) -> int:
        """Decrypt `source` into `target`; raises StreamError naming `name` and the failing chunk.
        Returns the plaintext size."""
        size = 0
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with source.open("rb") as sealed, os.fdopen(descriptor, "wb") as out:
            if sealed.read(len(MAGIC)) != MAGIC:
                raise StreamError(f"{name}: not an Obhut backup file (its header is missing or altered)")
            index = 0
            blob = _read_record(sealed, name, index)
            while blob is not None:
                following = _read_record(sealed, name, index + 1)
                final = following is None
                try:
                    plain = self._sealer.open(blob, _chunk_aad(self.backup_id, name, index, final=final))
                except DecryptionError:
                    raise StreamError(
                        f"{name}: chunk {index + 1} does not authenticate: the file was altered or truncated"
                    ) from None
                out.write(plain)
                size, index = size + len(plain), index + 1
                if progress is not None:
                    progress(len(plain))
                blob = following
        if index != chunks:
            raise StreamError(f"{name}: {index} chunks where the manifest says {chunks}: the file was truncated")
        return size


def _read_record(sealed: BinaryIO, name: str, index: int) -> bytes | None:
    header = sealed.read(_LENGTH)
    if not header:
        return None
    length = int.from_bytes(header, "big")
    blob = sealed.read(length) if len(header) == _LENGTH else b""
    if len(header) < _LENGTH or length < _OVERHEAD or len(blob) < length:
        raise StreamError(f"{name}: chunk {index + 1} is incomplete: the file was truncated")
    return blob
