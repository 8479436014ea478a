"""The key hierarchy's associated data: the bulk builders give the bytes the one-at-a-time ones give."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from obhut.vault import rules
from obhut.vault.rules import SecretKind

_IDS = st.text(min_size=1, max_size=40)
_NUMBERS = st.integers(min_value=0, max_value=2**31)


@given(_IDS, st.lists(st.tuples(_IDS, _NUMBERS, _NUMBERS, _NUMBERS), min_size=1, max_size=20))
def test_data_key_aads_match_data_key_aad(workspace_id: str, keys: list[tuple[str, int, int, int]]) -> None:
    aads = rules.DataKeyAads(workspace_id)
    built = [aads(aads.subject(subject), version, shard, generation) for subject, version, shard, generation in keys]
    assert built == [rules.data_key_aad(workspace_id, *key) for key in keys]


@given(_IDS, _NUMBERS, st.lists(st.tuples(st.sampled_from(SecretKind), _NUMBERS, _NUMBERS), min_size=1, max_size=20))
def test_secret_aads_match_secret_aad(workspace_id: str, version: int, ids: list[tuple[SecretKind, int, int]]) -> None:
    built = rules.secret_aads(workspace_id, version, [(kind.value, slot, generation) for kind, slot, generation in ids])
    assert built == [rules.secret_aad(workspace_id, version, kind, slot, generation) for kind, slot, generation in ids]
