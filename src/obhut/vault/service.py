"""The vault: the one place that holds key material, and the lifecycle of a workspace's keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import Connection, Engine, event, func, select
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from obhut.kit.clock import now
from obhut.kit.db import after_commit, beside, refresh_statistics, unit_of_work
from obhut.kit.errors import ConfigurationError, ConflictError, NotFoundError
from obhut.vault import repository, rules
from obhut.vault.cache import KeyCache, SecretId
from obhut.vault.cipher import Sealer, blind_index, derive_key, new_key
from obhut.vault.keyring import IndexGuess, Keyring
from obhut.vault.models import DataKey, KeyVersion, ShardGeneration, WrappedSecret
from obhut.vault.ports import KeyProvider, WrapItem
from obhut.vault.rules import RootKey, SecretKind, Tombstone, VersionState
from obhut.vault.sensitive import SensitiveStore

INDEX_SECRET: SecretId = (SecretKind.INDEX.value, 0, 0)
_KEYRINGS = "vault.keyrings"  # session.info: the keyrings opened in the current transaction, by workspace


def _reopen(session: Session, workspace_id: str) -> None:
    """The workspace's versions change in this transaction: the next `open` reads them again."""
    session.info.get(_KEYRINGS, {}).pop(workspace_id, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_keyrings(session: Session, transaction: SessionTransaction) -> None:
    """A keyring lives as long as its transaction: the next one sees a revocation committed meanwhile."""
    if transaction.parent is None:
        session.info.pop(_KEYRINGS, None)


def _index_key(secrets: dict[SecretId, bytes], index_name: str) -> bytes:
    """The key of one blind index, derived from the version's index root key once and kept with its secrets."""
    slot: SecretId = (f"index/{index_name}", 0, 0)
    key = secrets.get(slot)
    if key is None:
        key = secrets[slot] = derive_key(secrets[INDEX_SECRET], rules.index_key_info(index_name))
    return key


def _rewrapped(
    aads: rules.DataKeyAads, row: repository.KeyRow, opener: Sealer, to: tuple[int, int, int], sealer: Sealer
) -> repository.KeyRow:
    """The data key of `row` opened with its shard key (`opener`) and wrapped under `sealer`, the shard key of
    `to` (version, shard, generation): a rotation's and a shard move's one step per data key."""
    subject_id, version, shard, generation, wrapped = row
    subject = aads.subject(subject_id)
    data_key = opener.open(wrapped, aads(subject, version, shard, generation))
    return (subject_id, *to, sealer.seal(data_key, aads(subject, *to)))


def _analyse(bind: Engine | Connection, table: str) -> None:
    with Session(bind) as session:
        refresh_statistics(session, [table])
        session.commit()


@dataclass(frozen=True)
class VersionStatus:
    version: int
    provider: str
    key_ref: str
    origin: str
    state: str
    created_at: datetime
    retired_at: datetime | None
    revoked_at: datetime | None
    data_keys: int


class Vault:
    def __init__(
        self,
        providers: Mapping[str, KeyProvider],
        keystore: sessionmaker[Session],
        cache: KeyCache,
        shards: int,
    ) -> None:
        self._providers = providers
        self._keystore = keystore
        self._cache = cache
        self.shards = shards
        # where workspaces keep sensitive categories apart (set by the composition root); None: in the main database
        self.sensitive: SensitiveStore | None = None

    def provider(self, name: str) -> KeyProvider:
        provider = self._providers.get(name)
        if provider is None:
            configured = ", ".join(sorted(self._providers)) or "none"
            raise ConfigurationError(f"key provider '{name}' is not configured here (configured: {configured})")
        return provider

    # --- reading ---------------------------------------------------------------------------------
    def open(self, session: Session, workspace_id: str, versions: Sequence[RootKey] | None = None) -> Keyring:
        """The workspace's keys for one transaction; raises if they are revoked. Opened once per transaction:
        a second call answers the same keyring (a change of the versions in it makes the next call read them
        again). `versions`: the key versions where the caller read them in its own query (with the row)."""
        opened: dict[str, Keyring] = session.info.setdefault(_KEYRINGS, {})
        found = opened.get(workspace_id)
        if found is None:
            if versions is None:
                versions = repository.root_keys(session, workspace_id)
            found = opened[workspace_id] = Keyring(self, session, workspace_id, versions)
        return found

    def unwrapped_secrets(
        self, version: RootKey, wanted: Iterable[SecretId], *, whole: bool = False
    ) -> dict[SecretId, bytes]:
        """The version's secrets this process holds, `wanted` among them where the key store has them: those not
        held yet are read and unwrapped in one provider call (a version may have 65,536 shard keys, and a request
        needs a few). `whole`: if any is missing, every secret of the version not held is read (for work that
        needs most of them, a rotation)."""
        held = self._cache.get(version.workspace_id, version.version) or {}
        wanted = set(wanted)
        missing = {secret_id for secret_id in wanted if secret_id not in held}
        if not missing:
            return held
        with self._keystore() as keystore:
            stored = repository.secrets(keystore, version.workspace_id, version.version, None if whole else missing)
        stored = [(secret_id, wrapped) for secret_id, wrapped in stored if secret_id not in held]
        aads = rules.secret_aads(version.workspace_id, version.version, [secret_id for secret_id, _ in stored])
        items = [WrapItem(wrapped, aad) for (_, wrapped), aad in zip(stored, aads, strict=True)]
        plain = self.provider(version.provider).unwrap(version.key_ref, items) if items else []
        found = {secret_id: key for (secret_id, _), key in zip(stored, plain, strict=True)}
        self._cache.add(version.workspace_id, version.version, found)
        # the caller's own answer: the entry may have expired or moved on meanwhile, these stay what was read
        answer = {secret_id: held[secret_id] for secret_id in wanted if secret_id in held}
        answer.update(found)
        return answer

    def index_key(self, version: RootKey, index_name: str) -> bytes:
        return _index_key(self.unwrapped_secrets(version, [INDEX_SECRET]), index_name)

    def guess_blind_index(self, workspace_id: str, index_name: str, normalised: str) -> IndexGuess | None:
        """The blind index of a value from the keys this process already holds, before the workspace's versions
        are read (None if it holds none): a guess, which the caller confirms with the keyring it then opens. The
        index key is the same in every version of a workspace, so it is right unless the workspace's keys were
        provisioned anew meanwhile; a lookup then reads again with the right one."""
        secrets = self._cache.newest(workspace_id)
        if secrets is None or INDEX_SECRET not in secrets:
            return None
        key = _index_key(secrets, index_name)
        return IndexGuess(index_name, key, blind_index(key, normalised))

    # --- provisioning and rotation ------------------------------------------------------------------
    def provision(
        self, session: Session, workspace_id: str, provider_name: str, imported_key: bytes | None = None
    ) -> KeyVersion:
        if repository.key_versions(session, workspace_id):
            raise ConflictError(f"workspace '{workspace_id}' already has keys; rotate them instead")
        return self.create_version(session, workspace_id, 1, provider_name, imported_key, new_key())

    def create_version(
        self,
        session: Session,
        workspace_id: str,
        version: int,
        provider_name: str,
        imported_key: bytes | None,
        index_secret: bytes,
    ) -> KeyVersion:
        """A new root key with fresh shard keys and the workspace's (unchanged) index key wrapped under it."""
        _reopen(session, workspace_id)
        provider = self.provider(provider_name)
        ref = rules.root_key_ref(workspace_id, version)
        if provider.exists(ref):  # left by an attempt that never committed: nothing refers to it
            provider.destroy(ref)
        if imported_key is None:
            provider.create_key(ref)
        else:
            provider.import_key(ref, imported_key)
        shard = SecretKind.SHARD.value
        ids: list[SecretId] = [(shard, s, 0) for s in range(self.shards)]
        ids.append(INDEX_SECRET)
        plain = [new_key() for _ in range(self.shards)]
        plain.append(index_secret)
        aads = rules.secret_aads(workspace_id, version, ids)
        wrapped = provider.wrap(ref, list(map(WrapItem, plain, aads)))
        created = now()
        with unit_of_work(self._keystore) as keystore:
            repository.put_secrets(keystore, workspace_id, version, created, list(zip(ids, wrapped, strict=True)))
            refresh_statistics(keystore, [WrappedSecret.__tablename__])  # lookups by slot then use the index
        row = KeyVersion(
            workspace_id=workspace_id,
            version=version,
            provider=provider_name,
            key_ref=ref,
            origin="imported" if imported_key else "generated",
            state=VersionState.ACTIVE.value,
            created_at=created,
            retired_at=None,
            revoked_at=None,
        )
        session.add(row)
        session.flush()
        repository.add_shards(session, workspace_id, version, self.shards)
        engine = session.get_bind()  # after commit, in a transaction of its own: ANALYZE locks the table until it ends
        after_commit(session, lambda: _analyse(engine, ShardGeneration.__tablename__))
        return row

    def rewrap(self, keyring: Keyring, rows: Sequence[repository.KeyRow], target: RootKey, session: Session) -> int:
        """Move data keys (rows as `data_keys_below` reads them) to the target version's shard keys (a rotation
        step). The data keys themselves, and so every encrypted field, stay as they are."""
        workspace_id = keyring.workspace_id
        count = repository.shard_count(session, workspace_id, target.version)
        placed = [rules.shard_of(row[0], count) for row in rows]
        generations = repository.shard_generations(session, workspace_id, target.version, set(placed), lock="wrap")
        shard = SecretKind.SHARD.value  # a rotation needs nearly every shard key of both versions: all in one go
        new_secrets = self.unwrapped_secrets(target, {(shard, s, g) for s, g in generations.items()}, whole=True)
        sealers = {s: Sealer(new_secrets[(shard, s, g)]) for s, g in generations.items()}
        old_ids: dict[int, set[SecretId]] = {}
        for _, version, old_shard, old_generation, _ in rows:
            old_ids.setdefault(version, set()).add((shard, old_shard, old_generation))
        old_secrets = {v: self.unwrapped_secrets(keyring.versions[v], ids, whole=True) for v, ids in old_ids.items()}
        openers = {(v, s, g): Sealer(old_secrets[v][(kind, s, g)]) for v, ids in old_ids.items() for kind, s, g in ids}
        aads, version_to = rules.DataKeyAads(workspace_id), target.version
        updates = [
            _rewrapped(
                aads, row, openers[row[1:4]], (version_to, new_shard, generations[new_shard]), sealers[new_shard]
            )
            for row, new_shard in zip(rows, placed, strict=True)
        ]
        repository.rewrap_data_keys(session, workspace_id, updates)
        return len(updates)

    # --- revocation ---------------------------------------------------------------------------------
    def revoke(self, session: Session, workspace_id: str) -> list[KeyVersion]:
        _reopen(session, workspace_id)
        versions = self._versions(session, workspace_id)
        for version in versions:
            self.provider(version.provider).disable(version.key_ref)
        revoked_at = now()
        for version in versions:
            version.revoked_at = version.revoked_at or revoked_at
        session.flush()  # keyrings read the versions as plain rows: the rest of this transaction sees it
        self._cache.drop(workspace_id)
        if self.sensitive is not None:
            self.sensitive.set_enabled(workspace_id, enabled=False)
        return versions

    def restore(self, session: Session, workspace_id: str) -> list[KeyVersion]:
        _reopen(session, workspace_id)
        versions = self._versions(session, workspace_id)
        for version in versions:
            self.provider(version.provider).enable(version.key_ref)
            version.revoked_at = None
        session.flush()
        self._cache.drop(workspace_id)
        if self.sensitive is not None:
            self.sensitive.set_enabled(workspace_id, enabled=True)
        return versions

    def _versions(self, session: Session, workspace_id: str) -> list[KeyVersion]:
        versions = repository.key_versions(session, workspace_id)
        if not versions:
            raise NotFoundError(f"workspace '{workspace_id}' has no keys")
        return versions

    def status(self, session: Session, workspace_id: str) -> list[VersionStatus]:
        counts = dict(
            session.execute(
                select(DataKey.key_version, func.count())
                .where(DataKey.workspace_id == workspace_id)
                .group_by(DataKey.key_version)
            ).all()
        )
        return [
            VersionStatus(
                v.version,
                v.provider,
                v.key_ref,
                v.origin,
                v.state,
                v.created_at,
                v.retired_at,
                v.revoked_at,
                counts.get(v.version, 0),
            )
            for v in self._versions(session, workspace_id)
        ]

    # --- shredding ----------------------------------------------------------------------------------
    def shred(self, session: Session, workspace_id: str, subject_id: str) -> Tombstone:
        """Destroy one customer's data key so that no copy of the database can decrypt their fields."""
        return self.shred_many(session, workspace_id, [subject_id])[0]

    def shred_many(self, session: Session, workspace_id: str, subject_ids: Sequence[str]) -> list[Tombstone]:
        """`shred` for many customers: each shard they sit in moves to a new generation once, however many of
        them leave it, so a purge pays per shard, not per customer."""
        done = {t.subject_id: t for t in repository.shredded_many(session, workspace_id, subject_ids)}
        todo = sorted({s for s in subject_ids if s not in done})
        if todo:
            keyring, leaving, found = self.open(session, workspace_id), set(todo), set[str]()
            for version in keyring.versions.values():
                found |= self._move_shards(session, version, leaving)
            missing = [s for s in todo if s not in found]  # the transaction rolls back; the moves with it
            if missing:
                raise NotFoundError(f"customer {missing[0]} has no data key in workspace '{workspace_id}'")
            repository.delete_data_keys(session, workspace_id, todo)
            stamp = now()
            repository.add_tombstones(session, workspace_id, todo, stamp)
            done.update((s, Tombstone(workspace_id, s, stamp)) for s in todo)
        return [done[s] for s in subject_ids]

    def _move_shards(self, session: Session, version: RootKey, leaving: set[str]) -> set[str]:
        """Give each shard in `version` that a leaving subject sits in a new generation, and re-wrap its
        other members under it; the old generations are destroyed once the move has committed. Returns the
        leaving subjects whose data key is in `version`."""
        workspace_id, shard_kind = version.workspace_id, SecretKind.SHARD
        count = repository.shard_count(session, workspace_id, version.version)
        touched = {rules.shard_of(s, count) for s in leaving}
        # locked before the members are read: a key wrapped meanwhile under the old generation is waited for
        generations = repository.shard_generations(session, workspace_id, version.version, touched, lock="move")
        moved = {shard: generation + 1 for shard, generation in generations.items()}
        old_ids = {shard: (shard_kind.value, shard, generation - 1) for shard, generation in moved.items()}
        secrets = self.unwrapped_secrets(version, old_ids.values())
        fresh = {shard: new_key() for shard in moved}
        new_ids = [(shard_kind.value, shard, g) for shard, g in moved.items()]
        secret_aads = rules.secret_aads(workspace_id, version.version, new_ids)
        items = list(map(WrapItem, fresh.values(), secret_aads))
        wrapped = self.provider(version.provider).wrap(version.key_ref, items)
        beside(session, partial(self._store, version, list(zip(new_ids, wrapped, strict=True))))
        by_shard: dict[int, list[tuple[str, bytes]]] = {shard: [] for shard in moved}
        found = set[str]()
        for subject_id, shard, wrapped_key in repository.shard_members(
            session, workspace_id, version.version, sorted(moved)
        ):
            if subject_id in leaving:
                found.add(subject_id)
            else:
                by_shard[shard].append((subject_id, wrapped_key))
        updates: list[repository.KeyRow] = []
        aads, number = rules.DataKeyAads(workspace_id), version.version
        for shard, members in by_shard.items():
            if not members:
                continue
            if old_ids[shard] not in secrets:
                raise ConfigurationError(f"shard key {shard} of {version.key_ref} is missing from the key store")
            generation, opener, sealer = moved[shard], Sealer(secrets[old_ids[shard]]), Sealer(fresh[shard])
            updates += [
                _rewrapped(
                    aads, (subject_id, number, shard, generation - 1, blob), opener, (number, shard, generation), sealer
                )
                for subject_id, blob in members
            ]
        repository.rewrap_data_keys(session, workspace_id, updates)
        repository.set_shard_generations(session, workspace_id, version.version, moved)
        after_commit(session, lambda: self._destroy_below(version, moved, fresh))
        return found

    def _store(self, version: RootKey, secrets: list[tuple[SecretId, bytes]]) -> None:
        """New shard generations into the key store, in place of any that an attempt which never committed left."""
        with unit_of_work(self._keystore) as keystore:
            repository.put_secrets(keystore, version.workspace_id, version.version, now(), secrets, replace=True)

    def _destroy_below(self, version: RootKey, moved: Mapping[int, int], fresh: Mapping[int, bytes]) -> None:
        """Destroys the moved shards' old generations, here and in the key store; this process keeps the new
        ones, and every other key it held, so that the next request needs no provider call."""
        kind = SecretKind.SHARD.value
        added = {(kind, shard, moved[shard]): key for shard, key in fresh.items()}
        self._cache.moved(version.workspace_id, version.version, added)  # first: the old go here whatever follows
        with unit_of_work(self._keystore) as keystore:
            repository.delete_secrets(keystore, version.workspace_id, version.version, kind, moved)

    def sweep(self, session: Session, workspace_id: str) -> int:
        """Destroy shard keys older than their live generation, left behind if a process stopped between
        a shred's commit and its clean-up. Returns how many shards were swept."""
        swept, kind = 0, SecretKind.SHARD.value
        for version in repository.key_versions(session, workspace_id):
            live = repository.shard_generations(session, workspace_id, version.version)
            with unit_of_work(self._keystore) as keystore:
                held = repository.secret_generations(keystore, workspace_id, version.version, kind)
                stale = {slot: live[slot] for slot, generation in held if generation < live.get(slot, 0)}
                swept += sum(generation < live.get(slot, 0) for slot, generation in held)
                repository.delete_secrets(keystore, workspace_id, version.version, kind, stale)
        if swept:
            self._cache.drop(workspace_id)
        return swept
