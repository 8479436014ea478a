"""The key hierarchy's promises, on SQLite and PostgreSQL: binding, rotation, revocation, shredding."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text, update

from obhut.container import Container
from obhut.customers.models import Customer
from obhut.kit.db import unit_of_work
from obhut.kit.errors import NotFoundError
from obhut.vault import rules, tasks
from obhut.vault.errors import KeyRevokedError, SubjectShreddedError
from obhut.vault.keyring import IntegrityError
from obhut.vault.models import DataKey, KeyVersion, ShardGeneration, WrappedSecret
from obhut.vault.ports import KeyUnusableError
from obhut.workspaces import service as workspaces
from tests.conftest import WORKSPACE, jane


def _create(container: Container, count: int = 1, **overrides: Any) -> list[str]:
    ids = []
    with unit_of_work(container.sessions) as session:
        for n in range(count):
            data = jane(**{"external_ref": f"K-{n:04d}", "email": f"kunde{n}@example.com", **overrides})
            ids.append(container.customers.create(session, WORKSPACE, data).id)
    return ids


def _read(container: Container, customer_id: str) -> dict[str, Any]:
    with unit_of_work(container.sessions) as session:
        return container.customers.get(session, WORKSPACE, customer_id).values


class TestCiphertextIsBoundToItsPlace:
    def test_a_field_copied_to_another_customer_fails_to_decrypt(self, container: Container) -> None:
        first, second = _create(container, 2)
        with unit_of_work(container.sessions) as session:
            source = session.get(Customer, (WORKSPACE, first))
            assert source is not None
            session.execute(update(Customer).where(Customer.id == second).values(email=source.email))
        with pytest.raises(IntegrityError, match="field 'email'"):
            _read(container, second)
        assert _read(container, first)["email"] == "kunde0@example.com"

    def test_a_field_moved_to_another_column_fails_to_decrypt(self, container: Container) -> None:
        (customer_id,) = _create(container)
        with unit_of_work(container.sessions) as session:
            row = session.get(Customer, (WORKSPACE, customer_id))
            assert row is not None
            row.notes = row.given_name
        with pytest.raises(IntegrityError, match="field 'notes'"):
            _read(container, customer_id)

    def test_blind_indexes_differ_between_workspaces(self, container: Container) -> None:
        with unit_of_work(container.sessions) as session:
            workspaces.create(session, container.vault, "other")
            a = container.customers.create(session, WORKSPACE, jane())
            b = container.customers.create(session, "other", jane())
            rows = {r.workspace_id: r.email_index for r in session.scalars(select(Customer))}
        assert a.values["email"] == b.values["email"]
        assert rows[WORKSPACE] != rows["other"]
        assert len(rows[WORKSPACE] or b"") == 16


class TestRotation:
    def test_every_data_key_moves_and_data_stays_readable(self, container: Container) -> None:
        ids = _create(container, 12)
        seen: list[tuple[int, int]] = []
        report = tasks.rotate(
            container.vault,
            container.sessions,
            WORKSPACE,
            batch_size=5,
            progress=lambda done, total: seen.append((done, total)),
        )
        assert (report.to_version, report.rewrapped, report.resumed) == (2, 12, False)
        assert seen[0] == (0, 12)
        assert seen[-1] == (12, 12)
        with unit_of_work(container.sessions) as session:
            versions = {v.version: v.state for v in session.scalars(select(KeyVersion))}
            assert set(session.scalars(select(DataKey.key_version))) == {2}
        assert versions == {1: "retired", 2: "active"}
        assert all(_read(container, i)["family_name"] == "Musterfrau" for i in ids)

    def test_an_interrupted_rotation_resumes(self, container: Container) -> None:
        ids = _create(container, 10)

        def stop_after_first_batch(done: int, _total: int) -> None:
            if done >= 4:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            tasks.rotate(container.vault, container.sessions, WORKSPACE, batch_size=4, progress=stop_after_first_batch)
        with unit_of_work(container.sessions) as session:
            assert sorted(session.scalars(select(DataKey.key_version))) == [1] * 6 + [2] * 4
        new_id = _create(container, 1, external_ref="K-NEW", email="neu@example.com")[0]
        report = tasks.rotate(container.vault, container.sessions, WORKSPACE, batch_size=4)
        assert (report.resumed, report.to_version, report.rewrapped) == (True, 2, 6)
        assert all(_read(container, i)["given_name"] == "Jane" for i in [*ids, new_id])


class TestRevocation:
    def test_reads_fail_with_the_key_and_date_until_restored(self, container: Container) -> None:
        (customer_id,) = _create(container)
        with unit_of_work(container.sessions) as session:
            container.vault.revoke(session, WORKSPACE)
        with pytest.raises(KeyRevokedError, match=r"key 'obhut-acme-v1' of workspace 'acme' was revoked on \d{4}-"):
            _read(container, customer_id)
        with pytest.raises(KeyRevokedError):
            _create(container, 1, external_ref="K-X", email="x@example.com")
        provider = container.vault.provider("local")
        with pytest.raises(KeyUnusableError, match="disabled"):
            provider.unwrap("obhut-acme-v1", [])
        with unit_of_work(container.sessions) as session:
            container.vault.restore(session, WORKSPACE)
        assert _read(container, customer_id)["given_name"] == "Jane"

    def test_a_keyring_lasts_one_transaction_and_sees_changes_made_in_it(self, container: Container) -> None:
        (customer_id,) = _create(container)
        session = container.sessions()
        try:
            keyring = container.vault.open(session, WORKSPACE)
            assert container.vault.open(session, WORKSPACE) is keyring  # opened once per transaction
            container.vault.revoke(session, WORKSPACE)
            with pytest.raises(KeyRevokedError):
                container.vault.open(session, WORKSPACE)  # the revocation in this transaction shows at once
            session.rollback()  # the revocation is undone
            keyring = container.vault.open(session, WORKSPACE)
            session.commit()
            assert container.vault.open(session, WORKSPACE) is not keyring  # the next transaction opens anew
            session.rollback()
        finally:
            session.close()
        with unit_of_work(container.sessions) as elsewhere:  # another unit of work revokes and commits
            container.vault.revoke(elsewhere, WORKSPACE)
        with pytest.raises(KeyRevokedError):
            _read(container, customer_id)  # the next unit of work sees it


class TestShredding:
    def test_the_customer_is_gone_and_shard_neighbours_stay_readable(self, container: Container) -> None:
        ids = _create(container, 20)  # 8 shards in tests: several customers share the victim's shard
        victim, others = ids[0], ids[1:]
        with unit_of_work(container.sessions) as session:
            container.customers.shred(session, WORKSPACE, victim)
        with pytest.raises(SubjectShreddedError, match=f"customer {victim} was destroyed on"):
            _read(container, victim)
        assert [_read(container, i)["email"] for i in others] == [f"kunde{n}@example.com" for n in range(1, 20)]

    def test_many_at_once_move_each_shard_once(self, container: Container) -> None:
        ids = _create(container, 20)
        victims, others = ids[:7], ids[7:]
        with unit_of_work(container.sessions) as session:
            before = dict(session.execute(select(ShardGeneration.shard, ShardGeneration.generation)).all())
            shredded = container.vault.shred_many(session, WORKSPACE, [*victims, victims[0]])
            assert [t.subject_id for t in shredded] == [*victims, victims[0]]
        with unit_of_work(container.sessions) as session:
            after = dict(session.execute(select(ShardGeneration.shard, ShardGeneration.generation)).all())
        moved = {shard for shard in after if after[shard] != before[shard]}
        assert moved == {rules.shard_of(v, len(before)) for v in victims}
        assert all(after[shard] == before[shard] + 1 for shard in moved)
        for victim in victims:
            with pytest.raises(SubjectShreddedError):
                _read(container, victim)
        assert [_read(container, i)["email"] for i in others] == [f"kunde{n}@example.com" for n in range(7, 20)]

    def test_many_at_once_with_one_unknown_changes_nothing(self, container: Container) -> None:
        ids = _create(container, 20)
        unknown = "0190b3c2-0000-7000-8000-00000000dead"
        with unit_of_work(container.sessions) as session:
            before = dict(session.execute(select(ShardGeneration.shard, ShardGeneration.generation)).all())
        with (
            pytest.raises(NotFoundError, match=f"customer {unknown} has no data key"),
            unit_of_work(container.sessions) as session,
        ):
            container.vault.shred_many(session, WORKSPACE, [ids[0], unknown])
        with unit_of_work(container.sessions) as session:
            after = dict(session.execute(select(ShardGeneration.shard, ShardGeneration.generation)).all())
        assert after == before
        assert [_read(container, i)["email"] for i in ids] == [f"kunde{n}@example.com" for n in range(20)]

    def test_a_copy_of_the_database_taken_before_cannot_be_decrypted(self, container: Container) -> None:
        victim, neighbour = _create(container, 2)
        with unit_of_work(container.sessions) as session:  # the "backup": the rows as they were
            old_customer = {
                c.name: getattr(session.get(Customer, (WORKSPACE, victim)), c.name) for c in Customer.__table__.c
            }
            old_key = {c.name: getattr(session.get(DataKey, (WORKSPACE, victim)), c.name) for c in DataKey.__table__.c}
        with unit_of_work(container.sessions) as session:
            container.customers.delete(session, WORKSPACE, victim)
        with unit_of_work(container.sessions) as session:  # restore the old copy next to live keys
            session.execute(Customer.__table__.insert(), [old_customer])
            session.execute(DataKey.__table__.insert(), [old_key])
        with pytest.raises(SubjectShreddedError):
            _read(container, victim)
        with container.vault._keystore() as keystore:
            generations = set(
                keystore.scalars(
                    select(WrappedSecret.generation).where(
                        WrappedSecret.kind == "shard", WrappedSecret.slot == old_key["shard"]
                    )
                )
            )
        assert old_key["generation"] not in generations
        assert _read(container, neighbour)["given_name"] == "Jane"

    def test_a_shred_lets_the_old_shard_key_go_and_keeps_the_rest_warm(
        self, container: Container, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ids, shards = _create(container, 20), container.settings.key_shards
        assert shards < len(ids)  # so that some shard holds two of them
        victim, neighbour = next(
            (a, b) for a in ids for b in ids if a != b and rules.shard_of(a, shards) == rules.shard_of(b, shards)
        )
        elsewhere = next(i for i in ids if rules.shard_of(i, shards) != rules.shard_of(victim, shards))
        with unit_of_work(container.sessions) as session:
            key = session.get(DataKey, (WORKSPACE, victim))
            assert key is not None
            shard, generation = key.shard, key.generation
            container.customers.shred(session, WORKSPACE, victim)
        held = container.vault._cache.get(WORKSPACE, 1)
        assert held is not None
        assert ("shard", shard, generation) not in held  # destroyed: not even this process keeps it
        assert ("shard", shard, generation + 1) in held
        provider = container.vault.provider(container.settings.key_provider)
        calls: list[int] = []
        unwrap = provider.unwrap
        monkeypatch.setattr(provider, "unwrap", lambda ref, items: calls.append(len(items)) or unwrap(ref, items))
        assert [_read(container, i)["email"] for i in (neighbour, elsewhere)] == [
            f"kunde{ids.index(i)}@example.com" for i in (neighbour, elsewhere)
        ]
        assert calls == []  # the moved shard's new key and every other one were at hand

    @pytest.mark.parametrize("backend", ["postgres"])
    def test_a_shard_move_rewraps_its_keys_in_place_on_postgresql(self, container: Container) -> None:
        """The data keys' pages keep room (fillfactor 70): a re-wrap changes no indexed column, so each row is
        updated within its page, with no new index entries (a HOT update)."""
        ids, shards = _create(container, 20), container.settings.key_shards
        victim = next(a for a in ids for b in ids if a != b and rules.shard_of(a, shards) == rules.shard_of(b, shards))
        with unit_of_work(container.sessions) as session:
            options = session.scalar(text("SELECT reloptions FROM pg_class WHERE relname = 'vault_data_keys'"))
            assert options == ["fillfactor=70"]
            container.vault.shred(session, WORKSPACE, victim)
            counts = (
                "SELECT pg_stat_get_xact_tuples_updated(oid), pg_stat_get_xact_tuples_hot_updated(oid) "
                "FROM pg_class WHERE relname = 'vault_data_keys'"
            )
            updated, in_place = session.execute(text(counts)).one()
        assert updated >= 1
        assert in_place == updated

    def test_shredding_twice_is_harmless(self, container: Container) -> None:
        (customer_id,) = _create(container)
        with unit_of_work(container.sessions) as session:
            first = container.customers.shred(session, WORKSPACE, customer_id)
        with unit_of_work(container.sessions) as session:
            assert container.vault.shred(session, WORKSPACE, customer_id).shredded_at == first


class TestSweep:
    def test_a_shred_interrupted_before_its_clean_up_is_finished_by_sweep(self, container: Container) -> None:
        victim, _neighbour = _create(container, 2)
        with unit_of_work(container.sessions) as session:
            container.customers.shred(session, WORKSPACE, victim)
            session.info.pop("obhut.after_commit")  # the process dies right after the commit
        with container.vault._keystore() as keystore:
            before = len(list(keystore.scalars(select(WrappedSecret.generation).where(WrappedSecret.kind == "shard"))))
        with unit_of_work(container.sessions) as session:
            assert container.vault.sweep(session, WORKSPACE) == 1
            assert container.vault.sweep(session, WORKSPACE) == 0
        with container.vault._keystore() as keystore:
            after = len(list(keystore.scalars(select(WrappedSecret.generation).where(WrappedSecret.kind == "shard"))))
        assert (before, after) == (9, 8)


class TestShardKeysOnDemand:
    """A version may have 65,536 shard keys: a process unwraps those its work needs, in one call per batch."""

    def _unwraps(self, container: Container, monkeypatch: pytest.MonkeyPatch) -> list[set[bytes]]:
        provider = container.vault.provider(container.settings.key_provider)
        calls: list[set[bytes]] = []
        unwrap = provider.unwrap
        monkeypatch.setattr(
            provider, "unwrap", lambda ref, items: calls.append({i.aad for i in items}) or unwrap(ref, items)
        )
        container.vault._cache.drop(WORKSPACE)  # a process that has held none of them yet
        return calls

    def _shard_aads(self, container: Container, ids: list[str]) -> set[bytes]:
        shards = container.settings.key_shards
        return {rules.secret_aad(WORKSPACE, 1, rules.SecretKind.SHARD, rules.shard_of(i, shards), 0) for i in ids}

    def test_a_read_unwraps_its_own_shard_key_alone(
        self, container: Container, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ids = _create(container, 20)
        calls = self._unwraps(container, monkeypatch)
        first, other = (
            ids[0],
            next(i for i in ids if not self._shard_aads(container, [i]) & self._shard_aads(container, ids[:1])),
        )
        assert _read(container, first)["email"] == "kunde0@example.com"
        assert calls == [self._shard_aads(container, [first])]
        assert _read(container, first)["email"] == "kunde0@example.com"
        assert _read(container, other)["email"] == f"kunde{ids.index(other)}@example.com"
        assert calls == [self._shard_aads(container, [first]), self._shard_aads(container, [other])]

    def test_a_page_of_customers_unwraps_their_shard_keys_in_one_call(
        self, container: Container, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ids = _create(container, 20)
        calls = self._unwraps(container, monkeypatch)
        with unit_of_work(container.sessions) as session:
            keyring = container.vault.open(session, WORKSPACE)
            assert sorted(keyring.subjects(ids)) == sorted(ids)
        assert calls == [self._shard_aads(container, ids)]

    def _shard_pair(self, container: Container) -> tuple[str, str, list[str]]:
        """Two customers in one shard (8 shards in tests), and the rest."""
        ids, shards = _create(container, 20, given_name="Jana"), container.settings.key_shards
        victim, neighbour = next(
            (a, b) for a in ids for b in ids if a != b and rules.shard_of(a, shards) == rules.shard_of(b, shards)
        )
        return victim, neighbour, ids

    def _shred_rolled_back(self, container: Container, victim: str) -> None:
        with container.sessions() as session:  # stopped before its commit
            container.vault.shred(session, WORKSPACE, victim)  # has written the next generation to the key store
            session.rollback()

    def test_a_move_replaces_a_shard_key_left_by_an_attempt_that_never_committed(self, container: Container) -> None:
        victim, neighbour, _ = self._shard_pair(container)
        self._shred_rolled_back(container, victim)
        with unit_of_work(container.sessions) as session:
            container.vault.shred(session, WORKSPACE, victim)
        with pytest.raises(SubjectShreddedError):
            _read(container, victim)
        assert _read(container, neighbour)["given_name"] == "Jana"

    def test_a_rotation_after_a_move_that_never_committed_reads_the_live_keys(self, container: Container) -> None:
        """A rotation reads every shard key in the key store, the uncommitted move's one too: the live one stays."""
        victim, neighbour, ids = self._shard_pair(container)
        container.vault._cache.drop(WORKSPACE)
        assert _read(container, neighbour)["given_name"] == "Jana"  # its shard's live key alone is held
        self._shred_rolled_back(container, victim)
        report = tasks.rotate(container.vault, container.sessions, WORKSPACE)
        assert report.rewrapped == len(ids)
        assert {_read(container, i)["given_name"] for i in ids} == {"Jana"}

    def test_keys_held_before_a_load_stay_in_its_answer_when_the_entry_expires_meanwhile(
        self, container: Container, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ids, shards = _create(container, 20), container.settings.key_shards
        first = ids[0]
        other = next(i for i in ids if rules.shard_of(i, shards) != rules.shard_of(first, shards))
        container.vault._cache.drop(WORKSPACE)
        assert _read(container, first)["email"] == "kunde0@example.com"  # its shard key alone is held
        provider = container.vault.provider(container.settings.key_provider)
        unwrap = provider.unwrap

        def expiring(ref: str, items: Any) -> list[bytes]:
            for entry in container.vault._cache._entries.values():
                entry.expires_at = 0.0  # the entry's time runs out during the provider call
            return unwrap(ref, items)

        monkeypatch.setattr(provider, "unwrap", expiring)
        with unit_of_work(container.sessions) as session:
            keyring = container.vault.open(session, WORKSPACE)
            assert sorted(keyring.subjects([first, other])) == sorted([first, other])
