"""The sensitive store: the data categories a workspace keeps apart from the rest (segmentation).

A customer's fields in these categories are sealed under the customer's data key, as every field is, and then
sealed again under the store's own key: a key per workspace, wrapped by a root key of its own at the key provider,
kept in the sensitive database. The main database holds only a random reference to the record. So a breach of the
main database and its key store reveals none of these fields, a breach of the sensitive database alone reveals
nothing without the customers' data keys, and shredding a customer's data key shreds their sensitive fields in
every copy of either database.

Records are written in the sensitive database's own transaction, before the caller's commits, and never changed:
a change writes a new record, and the old one is deleted once the change commits. Should the caller's transaction
roll back, the records it wrote that no committed row points to are deleted at once. A backup holds deletions
(`holding`) from before it dumps the main database until it has dumped this one, so that every record the main
dump points to is in the sensitive dump; what a hold (or a process that stopped) left behind goes in `sweep`.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Table, bindparam, delete, select
from sqlalchemy.exc import IntegrityError as DuplicateError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import InstrumentedAttribute, Session

from obhut.kit import bulk
from obhut.kit.clock import now
from obhut.kit.db import after_commit, after_rollback, build_engine, session_factory, unit_of_work
from obhut.vault import rules
from obhut.vault.cipher import DecryptionError, Sealer, new_key
from obhut.vault.keyring import IntegrityError
from obhut.vault.models import SensitiveHold, SensitiveKey, SensitiveRecord
from obhut.vault.ports import KeyProvider, WrapItem

if TYPE_CHECKING:
    from obhut.vault.keyring import Keyring

log = logging.getLogger(__name__)
Fields = dict[str, bytes]  # field name -> the field's ciphertext under the customer's data key
Referenced = Callable[[Sequence[bytes]], set[bytes]]  # which of these references a committed main row holds
SWEEP_AFTER = timedelta(hours=1)
HOLD_LIMIT = timedelta(hours=6)  # a backup's hold older than this was left by one that stopped
REF_BYTES = 16
_RECORDS: Table = SensitiveRecord.__table__  # type: ignore[assignment]
_GET = select(_RECORDS.c.ref, _RECORDS.c.subject_id, _RECORDS.c.sealed).where(
    _RECORDS.c.workspace_id == bindparam("workspace_id"), _RECORDS.c.ref.in_(bindparam("refs", expanding=True))
)


@contextmanager
def holding(url: str) -> Iterator[None]:
    """While the block runs, no record of the sensitive store at `url` is deleted (a backup's dumps)."""
    engine = build_engine(url)
    hold = SensitiveHold(id=secrets.token_hex(8), started_at=now())
    try:
        with unit_of_work(session_factory(engine)) as store:
            store.add(hold)
        try:
            yield
        finally:
            with unit_of_work(session_factory(engine)) as store:
                store.execute(delete(SensitiveHold).where(SensitiveHold.id == hold.id))
    finally:
        engine.dispose()


def _encode(fields: Mapping[str, bytes]) -> bytes:
    return json.dumps({name: base64.b64encode(blob).decode() for name, blob in sorted(fields.items())}).encode()


def _decode(plain: bytes) -> Fields:
    return {name: base64.b64decode(text) for name, text in json.loads(plain).items()}


class SensitiveStore:
    def __init__(self, engine: Engine, categories: frozenset[str], provider: Callable[[str], KeyProvider]) -> None:
        """`provider`: the configured key provider of a name (`Vault.provider`)."""
        self.categories = categories
        self._engine = engine
        self._sessions = session_factory(engine)
        self._provider = provider
        self._sealers: dict[str, Sealer] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._engine.dispose()

    def _sealer(self, keyring: Keyring) -> Sealer:
        """The workspace's key of this store, created at its first use with the workspace's active provider."""
        workspace_id = keyring.workspace_id
        sealer = self._sealers.get(workspace_id)
        if sealer is not None:
            return sealer
        with self._lock:
            with self._sessions() as store:
                row = store.get(SensitiveKey, workspace_id)
            if row is None:
                row = self._create_key(workspace_id, keyring.active.provider)
            aad = rules.sensitive_key_aad(workspace_id, row.key_ref)
            (key,) = self._provider(row.provider).unwrap(row.key_ref, [WrapItem(row.wrapped, aad)])
            sealer = self._sealers[workspace_id] = Sealer(key)
        return sealer

    def _create_key(self, workspace_id: str, provider_name: str) -> SensitiveKey:
        provider = self._provider(provider_name)
        ref = rules.sensitive_key_ref(workspace_id, secrets.token_hex(6))
        provider.create_key(ref)
        (wrapped,) = provider.wrap(ref, [WrapItem(new_key(), rules.sensitive_key_aad(workspace_id, ref))])
        row = SensitiveKey(
            workspace_id=workspace_id, provider=provider_name, key_ref=ref, wrapped=wrapped, created_at=now()
        )
        try:
            with unit_of_work(self._sessions) as store:
                store.add(row)
        except DuplicateError:  # another process created the workspace's key first: use that one
            provider.destroy(ref)
            with self._sessions() as store:
                found = store.get(SensitiveKey, workspace_id)
            if found is None:
                raise
            return found
        return row

    def set_enabled(self, workspace_id: str, *, enabled: bool) -> None:
        """Revocation reaches the store's own root key too (and its key held here); restoring undoes it."""
        with self._lock:
            self._sealers.pop(workspace_id, None)
            with self._sessions() as store:
                row = store.get(SensitiveKey, workspace_id)
            if row is not None:
                provider = self._provider(row.provider)
                (provider.enable if enabled else provider.disable)(row.key_ref)

    def put(
        self,
        session: Session,
        keyring: Keyring,
        records: Sequence[tuple[str, Mapping[str, bytes]]],
        referenced: Referenced,
    ) -> list[bytes]:
        """Store each (customer, fields) as a new record, committed now; the references to keep in the caller's
        transaction. Should that roll back, those of the records no committed row points to (`referenced` asks
        the main database) are deleted again: a commit whose answer was lost may still have landed."""
        if not records:
            return []
        workspace_id, sealer, stamp = keyring.workspace_id, self._sealer(keyring), now()
        refs = [secrets.token_bytes(REF_BYTES) for _ in records]
        rows = [
            {
                "workspace_id": workspace_id,
                "ref": ref,
                "subject_id": subject_id,
                "sealed": sealer.seal(_encode(fields), rules.sensitive_record_aad(workspace_id, ref, subject_id)),
                "created_at": stamp,
            }
            for ref, (subject_id, fields) in zip(refs, records, strict=True)
        ]
        with unit_of_work(self._sessions) as store:
            bulk.insert_rows(store, _RECORDS, rows)
        after_rollback(session, lambda: self._tidy(workspace_id, refs, referenced))
        return refs

    def get(self, keyring: Keyring, wanted: Mapping[bytes, str]) -> dict[bytes, Fields]:
        """The records at the given references (each with the customer it must belong to), opened."""
        workspace_id, sealer = keyring.workspace_id, self._sealer(keyring)
        out: dict[bytes, Fields] = {}
        # a read outside any transaction: no BEGIN and ROLLBACK around the one statement
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for chunk in bulk.chunks(list(wanted)):
                for ref, subject_id, sealed in connection.execute(_GET, {"workspace_id": workspace_id, "refs": chunk}):
                    if subject_id != wanted[ref]:
                        raise IntegrityError(f"the sensitive record of customer {wanted[ref]} belongs to another")
                    try:
                        out[ref] = _decode(
                            sealer.open(sealed, rules.sensitive_record_aad(workspace_id, ref, subject_id))
                        )
                    except DecryptionError as error:
                        raise IntegrityError(
                            f"the sensitive record of customer {subject_id} does not authenticate: it was altered"
                        ) from error
        missing = next((ref for ref in wanted if ref not in out), None)
        if missing is not None:
            raise IntegrityError(
                f"the sensitive record of customer {wanted[missing]} is missing from the sensitive database: "
                "it was deleted, or restored from an older backup than the main database"
            )
        return out

    def drop(self, session: Session, workspace_id: str, refs: Sequence[bytes]) -> None:
        """Once the caller's transaction commits, delete these records (replaced, or their fields erased)."""
        gone = list(refs)
        after_commit(session, lambda: self._tidy(workspace_id, gone, None))

    def forget(self, session: Session, workspace_id: str, subject_ids: Sequence[str]) -> None:
        """Once the caller's transaction commits, delete every record of these customers (shredded or removed)."""
        ids = list(subject_ids)
        after_commit(session, lambda: self._tidy(workspace_id, ids, None, by_subject=True))

    def _tidy(
        self, workspace_id: str, values: Sequence[Any], referenced: Referenced | None, *, by_subject: bool = False
    ) -> None:
        """`_delete` once the caller's transaction has ended (with `referenced`: of the references no committed
        row holds). Should the store fail now, the caller's outcome stands and the records are left for the sweep
        (no committed row points to them)."""
        try:
            if referenced is not None:
                kept = referenced(values)
                values = [ref for ref in values if ref not in kept]
            self._delete(workspace_id, SensitiveRecord.subject_id if by_subject else SensitiveRecord.ref, values)
        except SQLAlchemyError as error:
            log.warning("%d sensitive records are left for the sweep: %s", len(values), type(error).__name__)

    def _delete(self, workspace_id: str, column: InstrumentedAttribute[Any], values: Sequence[Any]) -> int:
        """Deletes the records with these values of `column`, unless a backup holds deletions (then the sweep
        deletes them afterwards). How many went."""
        gone = 0
        held = select(SensitiveHold.id).where(SensitiveHold.started_at > now() - HOLD_LIMIT).exists()
        with unit_of_work(self._sessions) as store:
            for chunk in bulk.chunks(values):
                statement = delete(SensitiveRecord).where(
                    SensitiveRecord.workspace_id == workspace_id, column.in_(chunk), ~held
                )
                gone += store.execute(statement).rowcount  # type: ignore[attr-defined]
        return gone

    def workspaces(self) -> list[str]:
        with self._sessions() as store:
            return list(store.scalars(select(SensitiveRecord.workspace_id).distinct()))

    def sweep(self, workspace_id: str, referenced: Referenced, batch_size: int = 1000) -> int:
        """Delete the records that the main database does not point to (`referenced` answers which of some
        references it does): left by a backup's hold or a process that stopped. Records younger than SWEEP_AFTER
        are left alone: their writer's transaction may not have committed yet. Returns how many went."""
        cutoff: datetime = now() - SWEEP_AFTER
        swept, after = 0, b""
        while True:
            with self._sessions() as store:
                refs = list(
                    store.scalars(
                        select(SensitiveRecord.ref)
                        .where(
                            SensitiveRecord.workspace_id == workspace_id,
                            SensitiveRecord.created_at < cutoff,
                            SensitiveRecord.ref > after,
                        )
                        .order_by(SensitiveRecord.ref)
                        .limit(batch_size)
                    )
                )
            if not refs:
                return swept
            kept = referenced(refs)
            unreferenced = [ref for ref in refs if ref not in kept]
            if unreferenced:
                swept += self._delete(workspace_id, SensitiveRecord.ref, unreferenced)
            after = refs[-1]
