from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Label, Table, bindparam, delete, func, select, text, update
from sqlalchemy.orm import Session

from obhut.kit import bulk, stream
from obhut.vault.cache import SecretId
from obhut.vault.models import DataKey, KeyVersion, ShardGeneration, ShreddedSubject, WrappedSecret
from obhut.vault.rules import RootKey, Tombstone, VersionState, WrappedDataKey

_DATA_KEYS: Table = DataKey.__table__  # type: ignore[assignment]
_VERSIONS: Table = KeyVersion.__table__  # type: ignore[assignment]
_SECRETS: Table = WrappedSecret.__table__  # type: ignore[assignment]
_SHARDS: Table = ShardGeneration.__table__  # type: ignore[assignment]
_TOMBSTONES: Table = ShreddedSubject.__table__  # type: ignore[assignment]

# The hot reads take plain rows, not ORM objects: loading an ORM object costs more than the query on SQLite.
ROOT_KEY_COLUMNS: list[Label[Any]] = [_VERSIONS.c[name].label(f"root_{name}") for name in RootKey.__dataclass_fields__]
DATA_KEY_COLUMNS: list[Label[Any]] = [
    _DATA_KEYS.c[name].label(f"data_key_{name}") for name in WrappedDataKey.__dataclass_fields__
]

# Built once: this runs on every request (Vault.open), and building a statement costs more than running it.
_ROOT_KEYS = (
    select(*ROOT_KEY_COLUMNS).where(_VERSIONS.c.workspace_id == bindparam("workspace_id")).order_by(_VERSIONS.c.version)
)
_KEY_VERSIONS = (
    select(KeyVersion).where(KeyVersion.workspace_id == bindparam("workspace_id")).order_by(KeyVersion.version)
)


def root_keys(session: Session, workspace_id: str) -> list[RootKey]:
    """The workspace's key versions, oldest first, as a keyring reads them."""
    return [RootKey(*row) for row in session.connection().execute(_ROOT_KEYS, {"workspace_id": workspace_id})]


def key_versions(session: Session, workspace_id: str) -> list[KeyVersion]:
    """The workspace's key versions as ORM objects, for changing them."""
    return list(session.scalars(_KEY_VERSIONS, {"workspace_id": workspace_id}))


def set_version_state(session: Session, workspace_id: str, version: int, state: VersionState) -> None:
    session.execute(
        update(KeyVersion)
        .where(KeyVersion.workspace_id == workspace_id, KeyVersion.version == version)
        .values(state=state.value)
    )


def workspaces_rotating(session: Session) -> list[str]:
    """Workspaces with a key version still retiring: a rotation that has not finished."""
    query = select(KeyVersion.workspace_id).where(KeyVersion.state == VersionState.RETIRING.value).distinct()
    return list(session.scalars(query))


def shard_count(session: Session, workspace_id: str, version: int) -> int:
    """How many shards the version has (fixed when it was created; numbered from 0): the primary key's last."""
    query = (
        select(ShardGeneration.shard)
        .where(ShardGeneration.workspace_id == workspace_id, ShardGeneration.key_version == version)
        .order_by(ShardGeneration.shard.desc())
        .limit(1)
    )
    last = session.scalar(query)
    return 0 if last is None else int(last) + 1


def add_shards(session: Session, workspace_id: str, version: int, count: int) -> None:
    """The shards of a new version, each at generation 0 (one bulk insert: there may be 65,536)."""
    rows = [{"workspace_id": workspace_id, "key_version": version, "shard": s, "generation": 0} for s in range(count)]
    bulk.insert_rows(session, _SHARDS, rows)


def shard_generations(
    session: Session,
    workspace_id: str,
    version: int,
    shards: Collection[int] | None = None,
    lock: Literal["wrap", "move"] | None = None,
) -> dict[int, int]:
    """The live generation of every shard of a version (or of `shards`). `lock` (PostgreSQL; SQLite has one
    writer at a time anyway), until the transaction ends: "wrap" for whoever wraps keys under them (they may not
    move meanwhile, or the keys would be wrapped under a destroyed one), "move" for a shred that moves them (it
    waits for those wrapping, and for another move). Rows are locked in shard order, so that no two wait on each
    other."""
    table = _SHARDS.c
    query = select(table.shard, table.generation).where(
        table.workspace_id == workspace_id, table.key_version == version
    )
    if shards is not None:
        query = query.where(bulk.among(session, table.shard, sorted(shards)))
    if lock is not None:
        query = query.order_by(table.shard).with_for_update(read=lock == "wrap", key_share=lock == "wrap")
    # through SQLAlchemy, not driver rows: the lock may time out, and callers expect its errors
    return {shard: generation for shard, generation in session.connection().execute(query)}


def data_keys(session: Session, workspace_id: str, subject_ids: Sequence[str]) -> list[WrappedDataKey]:
    table = _DATA_KEYS.c
    query = select(*DATA_KEY_COLUMNS).where(table.workspace_id == workspace_id, table.subject_id.in_(subject_ids))
    return [WrappedDataKey(*row) for row in session.connection().execute(query)]


def data_keys_in_shard(session: Session, workspace_id: str, version: int, shard: int) -> list[DataKey]:
    query = select(DataKey).where(
        DataKey.workspace_id == workspace_id, DataKey.key_version == version, DataKey.shard == shard
    )
    return list(session.scalars(query))


KeyRow = tuple[str, int, int, int, bytes]
"""A data key where it sits: (subject_id, key_version, shard, generation, wrapped), as a rotation reads it and a
re-wrap writes it."""


def data_keys_below(session: Session, workspace_id: str, version: int, limit: int, after: str = "") -> list[KeyRow]:
    """(subject_id, key_version, shard, generation, wrapped) of the next `limit` data keys under older versions
    than `version`, as the driver gives them: a rotation reads every data key once. Keyset pagination on the
    primary key (`after`), so each batch costs the same however many remain."""
    table = _DATA_KEYS.c
    query = (
        select(table.subject_id, table.key_version, table.shard, table.generation, table.wrapped)
        .where(table.workspace_id == workspace_id, table.subject_id > after, table.key_version < version)
        .order_by(table.subject_id)
        .limit(limit)
    )
    return stream.driver_rows(session.connection(), query)


def count_data_keys_below(session: Session, workspace_id: str, version: int) -> int:
    query = select(func.count()).where(DataKey.workspace_id == workspace_id, DataKey.key_version < version)
    return session.scalar(query) or 0


def insert_data_keys(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    bulk.insert_rows(session, _DATA_KEYS, rows)


def rewrap_data_keys(session: Session, workspace_id: str, rows: Sequence[KeyRow]) -> None:
    """Bulk update by primary key."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":  # one statement over arrays, not a round trip per row
        subjects, versions, shards, generations, wrapped = zip(*rows, strict=True)
        width = len(wrapped[0])
        if any(len(w) != width for w in wrapped):
            raise ValueError("wrapped data keys of one re-wrap differ in length")
        if any("," in s for s in subjects):
            raise ValueError("a subject id holds a comma")
        parameters = {"ws": workspace_id, "width": width, "w": b"".join(wrapped), "s": ",".join(subjects)}
        parameters |= {
            name: ",".join(map(str, column))
            for name, column in zip(_NUMBERS, (versions, shards, generations), strict=True)
        }
        connection.execute(_REWRAP_PG, parameters)
        return
    # SQLite runs in process: row by row costs no round trip, and driver SQL skips SQLAlchemy's per-row work
    connection.exec_driver_sql(_REWRAP_LITE, [(*row, workspace_id) for row in rows])


_NUMBERS = ("kv", "sh", "g")
_REWRAP_LITE = (  # numbered parameters, in the order of a `KeyRow` and then the workspace
    "UPDATE vault_data_keys SET key_version = ?2, shard = ?3, generation = ?4, wrapped = ?5 "
    "WHERE workspace_id = ?6 AND subject_id = ?1"
)
# The wrapped keys (all of one length) travel as one bytea cut up by position, the other columns as comma-separated
# text split by the server: psycopg dumps every element of an array in Python, which cost more than the update.
_REWRAP_PG = text(
    "UPDATE vault_data_keys AS d SET key_version = u.kv, shard = u.sh, generation = u.g, "
    "wrapped = substring(CAST(:w AS bytea) FROM CAST((u.n - 1) * :width + 1 AS integer) FOR CAST(:width AS integer)) "
    "FROM unnest(string_to_array(:s, ','), CAST(string_to_array(:kv, ',') AS integer[]), "
    "CAST(string_to_array(:sh, ',') AS integer[]), CAST(string_to_array(:g, ',') AS integer[])) "
    "WITH ORDINALITY AS u(s, kv, sh, g, n) WHERE d.workspace_id = :ws AND d.subject_id = u.s"
)


def shard_members(session: Session, workspace_id: str, version: int, shards: Sequence[int]) -> stream.Chunk:
    """(subject_id, shard, wrapped) of every data key in the shards: driver rows, read once per shred (a purge
    reads most of the workspace's keys)."""
    table = _DATA_KEYS.c
    query = select(table.subject_id, table.shard, table.wrapped).where(
        table.workspace_id == workspace_id,
        table.key_version == version,
        bulk.among(session, table.shard, shards),  # an IN list of thousands took longer to compile
    )
    return stream.driver_rows(session.connection(), query)


def set_shard_generations(session: Session, workspace_id: str, version: int, generations: dict[int, int]) -> None:
    """Bulk update by primary key (ORM objects of these rows are not loaded anywhere: reads take columns)."""
    _by_slot(session, _SET_GENERATIONS, {"ws": workspace_id, "v": version}, generations)


def delete_data_keys(session: Session, workspace_id: str, subject_ids: Sequence[str]) -> None:
    table = _DATA_KEYS.c
    session.execute(
        delete(_DATA_KEYS).where(table.workspace_id == workspace_id, bulk.among(session, table.subject_id, subject_ids))
    )


def shredded(session: Session, workspace_id: str, subject_id: str) -> ShreddedSubject | None:
    return session.get(ShreddedSubject, (workspace_id, subject_id))


def add_tombstones(session: Session, workspace_id: str, subject_ids: Sequence[str], at: datetime) -> None:
    rows = [{"workspace_id": workspace_id, "subject_id": s, "shredded_at": at} for s in subject_ids]
    bulk.insert_rows(session, _TOMBSTONES, rows)


def shredded_many(session: Session, workspace_id: str, subject_ids: Sequence[str]) -> list[Tombstone]:
    table = _TOMBSTONES.c
    query = select(table.workspace_id, table.subject_id, table.shredded_at).where(
        table.workspace_id == workspace_id, bulk.among(session, table.subject_id, sorted(set(subject_ids)))
    )
    return [Tombstone(*row) for row in session.execute(query)]


def secrets(
    keystore: Session, workspace_id: str, version: int, wanted: Collection[SecretId] | None
) -> list[tuple[SecretId, bytes]]:
    """((kind, slot, generation), wrapped) of the `wanted` secrets the key store holds (None: every one of the
    version); read by slot, a prefix of the primary key."""
    table = _SECRETS.c
    base = select(table.kind, table.slot, table.generation, table.wrapped).where(
        table.workspace_id == workspace_id, table.key_version == version
    )
    if wanted is None:  # a whole version (65,536 shard keys): driver rows, no result processing
        rows = stream.driver_rows(keystore.connection(), base)
        return [((kind, slot, generation), wrapped) for kind, slot, generation, wrapped in rows]
    found = []
    slots: dict[str, list[int]] = {}
    for kind, slot, _ in wanted:
        slots.setdefault(kind, []).append(slot)
    for kind, of_kind in slots.items():
        for chunk in bulk.chunks(sorted(set(of_kind))):
            query = base.where(table.kind == kind, table.slot.in_(chunk))
            for _, slot, generation, wrapped in keystore.connection().execute(query):
                if (kind, slot, generation) in wanted:
                    found.append(((kind, slot, generation), wrapped))
    return found


def put_secrets(
    keystore: Session,
    workspace_id: str,
    version: int,
    created: datetime,
    secrets: Sequence[tuple[SecretId, bytes]],
    *,
    replace: bool = False,
) -> None:
    """Stores wrapped secrets ((kind, slot, generation), wrapped) in bulk. `replace`: first deletes any of the
    same ids, left by an attempt whose main transaction never committed."""
    if replace:
        by_kind: dict[str, dict[int, int]] = {}
        for (kind, slot, generation), _ in secrets:
            by_kind.setdefault(kind, {})[slot] = generation
        for kind, generations in by_kind.items():
            _by_slot(keystore, _DROP_SECRETS, {"ws": workspace_id, "v": version, "kind": kind}, generations)
    rows = [
        {"workspace_id": workspace_id, "key_version": version, "kind": kind, "slot": slot, "generation": generation,
         "wrapped": wrapped, "created_at": created}
        for (kind, slot, generation), wrapped in secrets
    ]  # fmt: skip
    bulk.insert_rows(keystore, _SECRETS, rows)


def _by_slot(session: Session, statements: tuple[str, str], fixed: dict[str, Any], pairs: Mapping[int, int]) -> None:
    """Runs a statement once per (slot, generation) pair: on SQLite row by row (in process, no round trips), on
    PostgreSQL as one statement over the pairs, sent as comma-separated text the server splits (a round trip per
    pair, or psycopg dumping arrays element by element, cost more than the work)."""
    if not pairs:
        return
    connection = session.connection()
    lite, pg = statements
    if connection.dialect.name == "postgresql":
        slots, generations = ",".join(map(str, pairs)), ",".join(map(str, pairs.values()))
        connection.execute(text(pg), {**fixed, "slots": slots, "gens": generations})
    else:  # driver SQL: SQLAlchemy's per-row parameter work cost more than SQLite's
        connection.exec_driver_sql(lite, [{**fixed, "s": slot, "g": generation} for slot, generation in pairs.items()])


# (SQLite, PostgreSQL) per (slot, generation) pair; PostgreSQL takes the pairs as text, split into the table u.
# The two deletes differ in one comparison: written out, since a query built from pieces is what S608 guards.
_DROP_SECRETS = (  # one generation of a slot
    (
        "DELETE FROM keystore_secrets WHERE workspace_id = :ws AND key_version = :v AND kind = :kind AND slot = :s "
        "AND generation = :g"
    ),
    (
        "DELETE FROM keystore_secrets AS k USING unnest(CAST(string_to_array(:slots, ',') AS integer[]), "
        "CAST(string_to_array(:gens, ',') AS integer[])) AS u(slot, g) WHERE k.workspace_id = :ws "
        "AND k.key_version = :v AND k.kind = :kind AND k.slot = u.slot AND k.generation = u.g"
    ),
)
_DROP_BELOW = (  # the generations of a slot older than a given one
    (
        "DELETE FROM keystore_secrets WHERE workspace_id = :ws AND key_version = :v AND kind = :kind AND slot = :s "
        "AND generation < :g"
    ),
    (
        "DELETE FROM keystore_secrets AS k USING unnest(CAST(string_to_array(:slots, ',') AS integer[]), "
        "CAST(string_to_array(:gens, ',') AS integer[])) AS u(slot, g) WHERE k.workspace_id = :ws "
        "AND k.key_version = :v AND k.kind = :kind AND k.slot = u.slot AND k.generation < u.g"
    ),
)
_SET_GENERATIONS = (
    "UPDATE vault_shards SET generation = :g WHERE workspace_id = :ws AND key_version = :v AND shard = :s",
    (
        "UPDATE vault_shards AS t SET generation = u.g FROM unnest(CAST(string_to_array(:slots, ',') AS integer[]), "
        "CAST(string_to_array(:gens, ',') AS integer[])) AS u(slot, g) WHERE t.workspace_id = :ws "
        "AND t.key_version = :v AND t.shard = u.slot"
    ),
)


def secret_generations(keystore: Session, workspace_id: str, version: int, kind: str) -> list[tuple[int, int]]:
    """(slot, generation) of every secret of `kind` the key store holds for the version."""
    table = _SECRETS.c
    query = select(table.slot, table.generation).where(
        table.workspace_id == workspace_id, table.key_version == version, table.kind == kind
    )
    return [(int(slot), int(generation)) for slot, generation in keystore.connection().execute(query)]


def delete_secrets(keystore: Session, workspace_id: str, version: int, kind: str, below: Mapping[int, int]) -> None:
    """Destroys the secrets of `kind` in each slot of `below` older than the generation it gives."""
    _by_slot(keystore, _DROP_BELOW, {"ws": workspace_id, "v": version, "kind": kind}, below)


def add_all(session: Session, rows: Iterable[object]) -> None:
    session.add_all(list(rows))
