from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from obhut.kit.db import Base, Blob, KeystoreBase, SensitiveBase, UTCDateTime


class KeyVersion(Base):
    """One version of a workspace's root key, held by a key provider under `key_ref`."""

    __tablename__ = "vault_key_versions"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    key_ref: Mapped[str] = mapped_column(String(200))
    origin: Mapped[str] = mapped_column(String(16))  # generated | imported
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"KeyVersion({self.workspace_id!r}, v{self.version}, {self.state}, {self.provider})"


class ShardGeneration(Base):
    """The live generation of each shard key; shredding a customer moves its shard to the next one."""

    __tablename__ = "vault_shards"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    key_version: Mapped[int] = mapped_column(primary_key=True)
    shard: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int]


class DataKey(Base):
    """A customer's data key, wrapped by a shard key. Never stored unwrapped."""

    __tablename__ = "vault_data_keys"
    # Room in each page (PostgreSQL): a shard move re-wraps rows without changing an indexed column, in place.
    __table_args__ = (Index(None, "workspace_id", "key_version", "shard"), {"postgresql_with": {"fillfactor": 70}})

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key_version: Mapped[int]
    shard: Mapped[int]
    generation: Mapped[int]
    data_key_version: Mapped[int]
    wrapped: Mapped[bytes] = mapped_column(Blob())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"DataKey({self.workspace_id!r}, {self.subject_id!r}, v{self.key_version})"


class ShreddedSubject(Base):
    """Tombstone of a destroyed data key: the erasure ledger's first entry for that customer."""

    __tablename__ = "vault_shredded"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    shredded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WrappedSecret(KeystoreBase):
    """Shard and index keys, wrapped by the provider's root key. Lives in the key store database."""

    __tablename__ = "keystore_secrets"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    key_version: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    slot: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(Blob())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"WrappedSecret({self.workspace_id!r}, v{self.key_version}, {self.kind}[{self.slot}])"


class SensitiveKey(SensitiveBase):
    """A workspace's key of the sensitive store, wrapped by a root key of its own at the key provider."""

    __tablename__ = "sensitive_keys"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    key_ref: Mapped[str] = mapped_column(String(200))
    wrapped: Mapped[bytes] = mapped_column(Blob())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"SensitiveKey({self.workspace_id!r}, {self.key_ref!r})"


class SensitiveRecord(SensitiveBase):
    """One customer's sensitive fields as written once: their field ciphertexts, sealed again under the store's
    key. The main database points to it by `ref`; a change writes a new record and deletes the old one."""

    __tablename__ = "sensitive_records"
    __table_args__ = (Index(None, "workspace_id", "subject_id"), Index(None, "workspace_id", "created_at"))

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    ref: Mapped[bytes] = mapped_column(Blob(), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(36))
    sealed: Mapped[bytes] = mapped_column(Blob())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"SensitiveRecord({self.workspace_id!r}, {self.subject_id!r})"


class SensitiveHold(SensitiveBase):
    """A backup under way: while one is, no record is deleted (the sweep deletes them afterwards)."""

    __tablename__ = "sensitive_holds"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
