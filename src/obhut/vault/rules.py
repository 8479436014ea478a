"""Pure rules of the key hierarchy: names, associated data, shard choice. No I/O, no cryptography.

    provider root key (per workspace and key version; BYOK / HYOK; revocable)
      └─ shard keys (N per version) and one index root key, wrapped by the root key, kept in the
         key store, a database apart from the customer data
           └─ data key (one per customer), wrapped by its shard key, kept beside the customer
                └─ fields, AES-256-GCM, associated data = workspace, customer, field, data key version

Shredding a customer moves every other data key of its shard to a fresh shard key and destroys the old
one: a copy of the main database taken earlier then holds a data key wrapped under a key that exists
nowhere any more. The cost is one shard's re-wrap (customers / N), not a whole rotation.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

FIELD_FORMAT_V1 = 1
BLIND_INDEX_BYTES = 16


class VersionState(StrEnum):
    ACTIVE = "active"  # wraps new data keys
    RETIRING = "retiring"  # a rotation is moving its data keys to the active version
    RETIRED = "retired"  # nothing live is wrapped under it; kept to read older backups


class SecretKind(StrEnum):
    SHARD = "shard"
    INDEX = "index"


@dataclass(frozen=True, slots=True)
class RootKey:
    """One version of a workspace's root key as a keyring reads it: a plain value, read with the rows a request
    needs (changes to a version go through the vault's repository)."""

    workspace_id: str
    version: int
    provider: str
    key_ref: str
    state: str
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class WrappedDataKey:
    """A customer's data key as stored: wrapped by shard key `shard` of root key `key_version`."""

    workspace_id: str
    subject_id: str
    key_version: int
    shard: int
    generation: int
    data_key_version: int
    wrapped: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Tombstone:
    """That a customer's data key was destroyed, and when."""

    workspace_id: str
    subject_id: str
    shredded_at: datetime


def root_key_ref(workspace_id: str, version: int) -> str:
    return f"obhut-{workspace_id}-v{version}"


def sensitive_key_ref(workspace_id: str, nonce: str) -> str:
    """The sensitive store's own root key; the nonce keeps two first writes racing from sharing one."""
    return f"obhut-{workspace_id}-sensitive-{nonce}"


def sensitive_key_aad(workspace_id: str, key_ref: str) -> bytes:
    return _encode(b"obhut/sensitive-key/1", workspace_id, key_ref)


def sensitive_record_aad(workspace_id: str, ref: bytes, subject_id: str) -> bytes:
    return _encode(b"obhut/sensitive-record/1", workspace_id, ref.hex(), subject_id)


def shard_of(subject_id: str, shards: int) -> int:
    digest = hashlib.blake2b(subject_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest) % shards


def _encode(label: bytes, *parts: str | int) -> bytes:
    """The label, then each part as its UTF-8 text prefixed with that text's length (4 bytes, big-endian)."""
    return label + b"".join(_int_part(part) if type(part) is int else _text_part(str(part)) for part in parts)


def _text_part(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(4) + raw


@functools.lru_cache(maxsize=1 << 18)
def _int_part(value: int) -> bytes:
    """An integer part (a version, a shard, a generation: a few hundred thousand at most, so kept)."""
    return _text_part(str(value))


def field_aad(workspace_id: str, subject_id: str, field: str, data_key_version: int) -> bytes:
    return field_aad_prefix(workspace_id, subject_id) + field_aad_suffix(field, data_key_version)


def field_aad_prefix(workspace_id: str, subject_id: str) -> bytes:
    """The customer's part of a field's associated data, computed once per customer, not per field."""
    return _encode(b"obhut/field/1", workspace_id, subject_id)


@functools.cache
def field_aad_suffix(field: str, data_key_version: int) -> bytes:
    return _encode(b"", field, data_key_version)


def data_key_aad(workspace_id: str, subject_id: str, key_version: int, shard: int, generation: int) -> bytes:
    return _encode(b"obhut/data-key/1", workspace_id, subject_id, key_version, shard, generation)


class DataKeyAads:
    """`data_key_aad` for many data keys of one workspace (a rotation step): the workspace is encoded once, each
    subject once, and the integers are encoded once per process."""

    def __init__(self, workspace_id: str) -> None:
        self._head = _encode(b"obhut/data-key/1", workspace_id)

    def subject(self, subject_id: str) -> bytes:
        return self._head + _text_part(subject_id)

    def __call__(self, subject: bytes, key_version: int, shard: int, generation: int) -> bytes:
        """The associated data, given `subject(subject_id)`."""
        return subject + _int_part(key_version) + _int_part(shard) + _int_part(generation)


def secret_aad(workspace_id: str, key_version: int, kind: SecretKind, slot: int, generation: int) -> bytes:
    return _encode(b"obhut/secret/1", workspace_id, key_version, kind.value, slot, generation)


def secret_aads(workspace_id: str, key_version: int, secrets: Sequence[tuple[str, int, int]]) -> list[bytes]:
    """`secret_aad` of many (kind, slot, generation) of one version (65,536 for a new one): the shared part once."""
    head = _encode(b"obhut/secret/1", workspace_id, key_version)
    kinds = {kind.value: _text_part(kind.value) for kind in SecretKind}
    return [head + kinds[kind] + _int_part(slot) + _int_part(generation) for kind, slot, generation in secrets]


def index_key_info(index_name: str) -> bytes:
    return _encode(b"obhut/blind-index/1", index_name)
