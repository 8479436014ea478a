"""A workspace's keys as one request sees them: checked for revocation once, then used for many records."""

from __future__ import annotations

import hmac
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from obhut.kit.clock import now
from obhut.kit.errors import ObhutError
from obhut.vault import repository, rules
from obhut.vault.cipher import BlindIndexer, DecryptionError, Sealer, Signer, new_key
from obhut.vault.errors import KeyRevokedError, SubjectShreddedError, WorkspaceKeysMissingError
from obhut.vault.rules import RootKey, SecretKind, VersionState, WrappedDataKey

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from obhut.vault.service import Vault


class IntegrityError(ObhutError):
    kind = "integrity"
    title = "Stored data does not authenticate"


@dataclass(frozen=True, slots=True)
class IndexGuess:
    """A blind index computed before the workspace's key versions were read (see `Vault.guess_blind_index`),
    with the index key it came from, so that the keyring opened afterwards can confirm it cheaply."""

    index_name: str
    key: bytes = field(repr=False)
    digest: bytes = field(repr=False)


class SubjectCipher:
    """Encrypts and decrypts the fields of one customer, each bound to its workspace, customer and field."""

    __slots__ = ("_prefix", "_sealer", "data_key_version", "subject_id", "workspace_id")

    def __init__(self, workspace_id: str, subject_id: str, data_key: bytes, data_key_version: int) -> None:
        self.workspace_id = workspace_id
        self.subject_id = subject_id
        self.data_key_version = data_key_version
        self._sealer = Sealer(data_key)
        self._prefix = rules.field_aad_prefix(workspace_id, subject_id)

    def _aad(self, field: str) -> bytes:
        return self._prefix + rules.field_aad_suffix(field, self.data_key_version)

    def seal(self, field: str, plaintext: bytes) -> bytes:
        return self._sealer.seal(plaintext, self._aad(field))

    def seal_fields(self, fields: Sequence[str], plaintexts: Sequence[bytes]) -> list[bytes]:
        """`seal` for several fields of this customer at once (the bulk path of an import)."""
        prefix, version = self._prefix, self.data_key_version
        return self._sealer.seal_many(plaintexts, [prefix + rules.field_aad_suffix(f, version) for f in fields])

    def open(self, field: str, blob: bytes) -> bytes:
        return self.open_fields([field], [blob])[0]

    def open_fields(self, fields: Sequence[str], blobs: Sequence[bytes]) -> list[bytes]:
        """`open` for several fields of this customer at once (a read of the record)."""
        prefix, version, opener = self._prefix, self.data_key_version, self._sealer.open
        out = []
        for name, blob in zip(fields, blobs, strict=True):
            try:
                out.append(opener(blob, prefix + rules.field_aad_suffix(name, version)))
            except DecryptionError as error:
                raise IntegrityError(
                    f"field '{name}' of customer {self.subject_id} does not authenticate: it was altered or "
                    "moved in the database"
                ) from error
        return out

    def __repr__(self) -> str:
        return f"SubjectCipher({self.workspace_id!r}, {self.subject_id!r})"


class Keyring:
    def __init__(self, vault: Vault, session: Session, workspace_id: str, versions: Sequence[RootKey]) -> None:
        if not versions:
            raise WorkspaceKeysMissingError(workspace_id)
        revoked = next((v for v in versions if v.revoked_at is not None), None)
        if revoked is not None and revoked.revoked_at is not None:
            raise KeyRevokedError(workspace_id, revoked.key_ref, revoked.revoked_at)
        self._vault = vault
        self._session = session
        self.workspace_id = workspace_id
        self.versions = {v.version: v for v in versions}
        self.active = next(v for v in versions if v.state == VersionState.ACTIVE)
        self._shards: int | None = None  # of the active version
        self._indexers: dict[str, BlindIndexer] = {}
        self._ciphers: dict[str, SubjectCipher] = {}  # opened this request: the access log seals with them too

    def _shard_keys(self, version: int, shards: Collection[tuple[int, int]]) -> dict[tuple[int, int], Sealer]:
        """Sealers of shard keys by (shard, generation), in one provider call for those not held yet; one the key
        store no longer has is left out (its shard was moved: the generation is destroyed)."""
        kind = SecretKind.SHARD.value
        held = self._vault.unwrapped_secrets(self.versions[version], {(kind, s, g) for s, g in shards})
        return {(s, g): Sealer(secret) for s, g in shards if (secret := held.get((kind, s, g))) is not None}

    def blind_index(self, index_name: str, normalised: str) -> bytes:
        indexer = self._indexers.get(index_name)
        if indexer is None:
            indexer = self._indexers[index_name] = BlindIndexer(self._vault.index_key(self.active, index_name))
        return indexer(normalised)

    def confirms(self, guess: IndexGuess) -> bool:
        """Whether the guess used this workspace's index key (and so its digest is the one to look up)."""
        return hmac.compare_digest(self._vault.index_key(self.active, guess.index_name), guess.key)

    def derived_key(self, name: str) -> bytes:
        """A workspace key for one use (masking digests, sealing staff secrets), derived from the index root."""
        return self._vault.index_key(self.active, f"derived/{name}")

    def signer(self, name: str) -> Signer:
        """An Ed25519 key of the workspace for one use (signing the access log's checkpoints). It survives key
        rotation (derived from the index root, which rotation carries over) and is unusable once revoked."""
        return Signer(self.derived_key(f"ed25519/{name}"))

    def seal_secret(self, context: str, plaintext: bytes) -> bytes:
        """Seals a workspace secret that is not customer data (a TOTP seed, a justification), bound to `context`."""
        return Sealer(self.derived_key("workspace-secrets")).seal(plaintext, context.encode())

    def open_secret(self, context: str, blob: bytes) -> bytes:
        try:
            return Sealer(self.derived_key("workspace-secrets")).open(blob, context.encode())
        except DecryptionError as error:
            raise IntegrityError(f"a workspace secret ({context.partition(':')[0]}) does not authenticate") from error

    def new_subjects(self, subject_ids: Sequence[str]) -> dict[str, SubjectCipher]:
        """Fresh data keys for new customers, stored wrapped (one bulk insert); ciphers for their fields."""
        version = self.active.version
        if self._shards is None:
            self._shards = repository.shard_count(self._session, self.workspace_id, version)
        placed = {subject_id: rules.shard_of(subject_id, self._shards) for subject_id in subject_ids}
        # held until this transaction ends: a shred cannot move these shards and destroy their keys meanwhile
        generations = repository.shard_generations(
            self._session, self.workspace_id, version, set(placed.values()), lock="wrap"
        )
        created: datetime = now()
        rows: list[dict[str, Any]] = []
        ciphers: dict[str, SubjectCipher] = {}
        shard_keys = self._shard_keys(version, generations.items())
        lost = next((shard for shard, generation in generations.items() if (shard, generation) not in shard_keys), None)
        if lost is not None:
            raise IntegrityError(f"shard key {lost} of {self.active.key_ref} is missing")
        for subject_id in subject_ids:
            shard = placed[subject_id]
            generation = generations[shard]
            shard_key = shard_keys[(shard, generation)]
            data_key = new_key()
            aad = rules.data_key_aad(self.workspace_id, subject_id, version, shard, generation)
            rows.append(
                {
                    "workspace_id": self.workspace_id,
                    "subject_id": subject_id,
                    "key_version": version,
                    "shard": shard,
                    "generation": generation,
                    "data_key_version": 1,
                    "wrapped": shard_key.seal(data_key, aad),
                    "created_at": created,
                }
            )
            ciphers[subject_id] = SubjectCipher(self.workspace_id, subject_id, data_key, 1)
        repository.insert_data_keys(self._session, rows)
        return ciphers

    def subjects(self, subject_ids: Sequence[str]) -> dict[str, SubjectCipher]:
        """Ciphers of existing customers; a shredded customer raises SubjectShreddedError."""
        if all(s in self._ciphers for s in subject_ids):
            return {s: self._ciphers[s] for s in subject_ids}
        return self.ciphers_for(subject_ids, repository.data_keys(self._session, self.workspace_id, subject_ids))

    def ciphers_for(self, subject_ids: Sequence[str], data_keys: Sequence[WrappedDataKey]) -> dict[str, SubjectCipher]:
        """Like `subjects`, with the data key rows already loaded (e.g. joined to the customer's row)."""
        found = {dk.subject_id: dk for dk in data_keys}
        wanted: dict[int, set[tuple[int, int]]] = {}  # by version: the shard generations needed
        for row in data_keys:
            wanted.setdefault(row.key_version, set()).add((row.shard, row.generation))
        shard_keys = {version: self._shard_keys(version, shards) for version, shards in wanted.items()}
        ciphers = {}
        for subject_id in subject_ids:
            dk = found.get(subject_id)
            if dk is None:
                tombstone = repository.shredded(self._session, self.workspace_id, subject_id)
                raise SubjectShreddedError(subject_id, tombstone.shredded_at if tombstone else None)
            opener = shard_keys[dk.key_version].get((dk.shard, dk.generation))
            if opener is None:  # the shard generation was destroyed: a stale copy of a shredded customer
                raise SubjectShreddedError(subject_id, None)
            aad = rules.data_key_aad(self.workspace_id, subject_id, dk.key_version, dk.shard, dk.generation)
            try:
                data_key = opener.open(dk.wrapped, aad)
            except DecryptionError as error:
                raise IntegrityError(f"the data key of customer {subject_id} does not authenticate") from error
            ciphers[subject_id] = SubjectCipher(self.workspace_id, subject_id, data_key, dk.data_key_version)
        self._ciphers.update(ciphers)
        return ciphers

    def subject(self, subject_id: str) -> SubjectCipher:
        return self.subjects([subject_id])[subject_id]

    def __repr__(self) -> str:
        return f"Keyring({self.workspace_id!r}, active=v{self.active.version})"
