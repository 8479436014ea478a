"""The Merkle log's pure core against the RFC 6962 reference vectors of transparency-dev/merkle, a naive
recursive MTH, and every proof of small trees (and their mutations)."""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Sequence

import pytest

from obhut.audit import merkle

# transparency-dev/merkle testonly/constants.go: LeafInputs, NodeHashes, RootHashes.
LEAF_INPUTS = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
NODE_HASHES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# transparency-dev/merkle testdata/inclusion/{1..4}/happy-path.json: index, size, leaf, proof (base64);
# the root is ROOTS[size].
INCLUSION = [
    (
        0,
        8,
        "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
        [
            "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
            "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
            "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
        ],
    ),
    (
        5,
        8,
        "QnGia+DYqE8L1UyMMC58s6O10fpngKQLzOKHNHfatlg=",
        [
            "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
            "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
            "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
        ],
    ),
    (2, 3, "ApjRIpBtz8EIkstTpzmS/FufST6kybrbJ7eRtBJ6f+c=", ["+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU="]),
    (
        1,
        5,
        "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
        [
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
            "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
        ],
    ),
]
# testdata/consistency/{1..4}/happy-path.json: first, second, proof (base64); the roots are ROOTS[first], ROOTS[second].
CONSISTENCY = [
    (
        1,
        8,
        [
            "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
            "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
            "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
        ],
    ),
    (
        6,
        8,
        [
            "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
            "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
            "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
        ],
    ),
    (2, 5, ["Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=", "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms="]),
    (
        6,
        7,
        [
            "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
            "sIaT7C5yFZcTBkHoIR5+7cy0wmQTlj7ubB4u0W/7Gl8=",
            "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
        ],
    ),
]
MAX_PROOF_SIZE = 40

Nodes = dict[tuple[int, int], bytes]


def naive_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.1 MTH, word for word: split at the largest power of two smaller than n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(naive_root(leaves[:k]), naive_root(leaves[k:]))


def leaves_of(count: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(count)]


def build(leaves: Sequence[bytes]) -> tuple[merkle.CompactRange, Nodes]:
    tree, nodes = merkle.CompactRange(), {}
    for leaf in leaves:
        for level, index, digest in tree.append(leaf):
            assert (level, index) not in nodes
            nodes[level, index] = digest
    return tree, nodes


class Getter:
    """A NodeGetter over the stored nodes that refuses any node not yet complete in a tree of `size` leaves
    and counts its lookups."""

    def __init__(self, nodes: Nodes, size: int) -> None:
        self.nodes, self.size, self.lookups = nodes, size, 0

    def __call__(self, level: int, index: int) -> bytes:
        assert (index + 1) << level <= self.size, f"node ({level}, {index}) is not complete at size {self.size}"
        self.lookups += 1
        return self.nodes[level, index]


LEAVES = leaves_of(MAX_PROOF_SIZE)
TREE, NODES = build(LEAVES)
ROOT_AT = [naive_root(LEAVES[:n]) for n in range(MAX_PROOF_SIZE + 1)]


def flipped(proof: Sequence[bytes], position: int, bit: int = 0) -> list[bytes]:
    changed = list(proof)
    changed[position] = bytes([changed[position][0] ^ (1 << bit)]) + changed[position][1:]
    return changed


def b64(values: Sequence[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


# --- reference vectors --------------------------------------------------------------------------------------
def test_reference_roots_nodes_and_compact_ranges() -> None:
    leaves = [merkle.leaf_hash(bytes.fromhex(data)) for data in LEAF_INPUTS]
    assert merkle.EMPTY_ROOT.hex() == ROOTS[0]
    tree, nodes = build(leaves)
    assert nodes == {(level, i): bytes.fromhex(h) for level, row in enumerate(NODE_HASHES) for i, h in enumerate(row)}
    for size, expected in enumerate(ROOTS):
        assert merkle.root(leaves[:size]).hex() == expected
        assert naive_root(leaves[:size]).hex() == expected
        prefix, _ = build(leaves[:size])
        assert prefix.root().hex() == expected
        # transparency-dev CompactTrees: one perfect node per set bit of the size, largest first
        assert prefix.hashes == [nodes[level, (size >> level) - 1] for level in range(3, -1, -1) if size >> level & 1]
    assert tree.size == 8


@pytest.mark.parametrize(("index", "size", "leaf", "proof"), INCLUSION)
def test_reference_inclusion_proofs(index: int, size: int, leaf: str, proof: list[str]) -> None:
    _, nodes = build([merkle.leaf_hash(bytes.fromhex(data)) for data in LEAF_INPUTS])
    assert merkle.inclusion_proof(index, size, Getter(nodes, size)) == b64(proof)
    assert merkle.verify_inclusion(index, size, base64.b64decode(leaf), b64(proof), bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_reference_consistency_proofs(first: int, second: int, proof: list[str]) -> None:
    _, nodes = build([merkle.leaf_hash(bytes.fromhex(data)) for data in LEAF_INPUTS])
    assert merkle.consistency_proof(first, second, Getter(nodes, second)) == b64(proof)
    old, new = bytes.fromhex(ROOTS[first]), bytes.fromhex(ROOTS[second])
    assert merkle.verify_consistency(first, second, old, new, b64(proof))
    assert not merkle.verify_consistency(first, second, new, old, b64(proof))


# --- roots and the compact range ----------------------------------------------------------------------------
def test_roots_agree_with_the_naive_definition() -> None:
    leaves = leaves_of(70)
    tree = merkle.CompactRange()
    for size in range(71):
        expected = naive_root(leaves[:size])
        assert merkle.root(leaves[:size]) == expected
        assert tree.root() == expected
        assert tree.size == size
        assert len(tree.hashes) == size.bit_count()
        if size < 70:
            tree.append(leaves[size])


def test_appended_nodes_are_the_perfect_subtrees_and_each_comes_once() -> None:
    assert len(NODES) == 2 * MAX_PROOF_SIZE - MAX_PROOF_SIZE.bit_count()
    for (level, index), digest in NODES.items():
        assert digest == naive_root(LEAVES[index << level : (index + 1) << level])


def test_compact_range_resumes_from_its_persisted_state() -> None:
    leaves = leaves_of(23)
    partial, _ = build(leaves[:13])
    resumed = merkle.CompactRange(partial.size, partial.hashes)
    completed = [resumed.append(leaf) for leaf in leaves[13:]]
    assert resumed.root() == naive_root(leaves)
    assert completed[0] == [(0, 13, leaves[13]), (1, 6, NODES[1, 6])]
    assert completed[1] == [(0, 14, leaves[14])]
    assert completed[2] == [(level, 15 >> level, NODES[level, 15 >> level]) for level in range(5)]  # up to the root
    resumed.hashes.clear()  # a copy: the range is unchanged
    assert resumed.root() == naive_root(leaves)


@pytest.mark.parametrize(
    ("size", "hashes"), [(-1, []), (3, [bytes(32)]), (2, [bytes(32), bytes(32)]), (1, [bytes(31)])]
)
def test_compact_range_refuses_an_inconsistent_state(size: int, hashes: list[bytes]) -> None:
    with pytest.raises(ValueError):
        merkle.CompactRange(size, hashes)


def test_compact_range_refuses_a_leaf_that_is_not_a_hash() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        merkle.CompactRange().append(b"raw data")


def test_subtree_root_composes_stored_nodes_and_refuses_misaligned_ranges() -> None:
    assert merkle.subtree_root(Getter(NODES, 40), 32, 39) == naive_root(LEAVES[32:39])
    assert merkle.subtree_root(Getter(NODES, 40), 5, 5) == merkle.EMPTY_ROOT
    with pytest.raises(ValueError, match="not a subtree"):
        merkle.subtree_root(Getter(NODES, 40), 2, 7)


# --- every proof of small trees -----------------------------------------------------------------------------
def test_every_inclusion_proof_verifies_and_every_mutation_fails() -> None:
    other_leaf = merkle.leaf_hash(b"other")
    for size in range(1, MAX_PROOF_SIZE + 1):
        root = ROOT_AT[size]
        for index in range(size):
            get = Getter(NODES, size)
            proof = merkle.inclusion_proof(index, size, get)
            assert get.lookups <= 2 * size.bit_length()
            leaf = LEAVES[index]
            assert merkle.verify_inclusion(index, size, leaf, proof, root)
            for position in range(len(proof)):
                assert not merkle.verify_inclusion(index, size, leaf, flipped(proof, position, position % 8), root)
            bad_proofs = [proof[:-1], proof[1:], [*proof, other_leaf], [other_leaf, *proof], [*proof, bytes(32)]]
            for bad in bad_proofs:
                if bad != proof:
                    assert not merkle.verify_inclusion(index, size, leaf, bad, root)
            for wrong_index in (index - 1, index + 1, index ^ 2, size):
                if wrong_index != index:
                    assert not merkle.verify_inclusion(wrong_index, size, leaf, proof, root)
            # a wrong size, with the root of that size (the pair a checkpoint signs)
            for wrong_size in {size - 1, size + 1, size * 2, size // 2} - {size}:
                if wrong_size <= MAX_PROOF_SIZE:
                    assert not merkle.verify_inclusion(index, wrong_size, leaf, proof, ROOT_AT[wrong_size])
            assert not merkle.verify_inclusion(index, size, other_leaf, proof, root)
            assert not merkle.verify_inclusion(index, size, leaf, proof, ROOT_AT[size - 1])
            assert not merkle.verify_inclusion(index, size, leaf, proof, other_leaf)


def test_every_consistency_proof_verifies_and_every_mutation_fails() -> None:
    for second in range(1, MAX_PROOF_SIZE + 1):
        for first in range(1, second + 1):
            get = Getter(NODES, second)
            proof = merkle.consistency_proof(first, second, get)
            assert get.lookups <= 2 * second.bit_length()
            assert merkle.verify_consistency(first, second, ROOT_AT[first], ROOT_AT[second], proof)
            assert_consistency_mutations_fail(first, second, proof)


def assert_consistency_mutations_fail(first: int, second: int, proof: list[bytes]) -> None:
    extra = merkle.leaf_hash(b"other")
    old, new = ROOT_AT[first], ROOT_AT[second]
    for position in range(len(proof)):
        assert not merkle.verify_consistency(first, second, old, new, flipped(proof, position, position % 8))
    for bad in (proof[:-1], proof[1:], [*proof, extra], [extra, *proof], [*proof, *proof[-1:]]):
        if bad != proof:
            assert not merkle.verify_consistency(first, second, old, new, bad)
    for wrong_first in (first - 1, first + 1):
        if 0 < wrong_first <= second:
            assert not merkle.verify_consistency(wrong_first, second, ROOT_AT[wrong_first], new, proof)
    for wrong_second in (second - 1, second + 1):
        if first <= wrong_second <= MAX_PROOF_SIZE:
            assert not merkle.verify_consistency(first, wrong_second, old, ROOT_AT[wrong_second], proof)
    assert not merkle.verify_consistency(first, second, extra, new, proof)
    assert not merkle.verify_consistency(first, second, old, extra, proof)
    if first != second:
        assert not merkle.verify_consistency(first, second, new, old, proof)
    assert not merkle.verify_consistency(0, second, merkle.EMPTY_ROOT, new, proof)
    assert not merkle.verify_consistency(second + 1, second, old, new, proof)


def test_proofs_refuse_impossible_positions() -> None:
    get = Getter(NODES, 8)
    for index, size in ((8, 8), (-1, 8), (0, 0)):
        with pytest.raises(ValueError, match="not in a tree"):
            merkle.inclusion_proof(index, size, get)
    for first, second in ((0, 8), (9, 8)):
        with pytest.raises(ValueError, match="0 < first <= second"):
            merkle.consistency_proof(first, second, get)
    assert merkle.consistency_proof(8, 8, get) == []


def test_random_trees_agree_with_the_naive_definition() -> None:
    rng = random.Random(9162)
    for _ in range(20):
        leaves = [rng.randbytes(32) for _ in range(rng.randrange(1, 300))]
        tree, nodes = build(leaves)
        assert tree.root() == merkle.root(leaves) == naive_root(leaves)
        index, size = rng.randrange(len(leaves)), len(leaves)
        proof = merkle.inclusion_proof(index, size, Getter(nodes, size))
        assert merkle.verify_inclusion(index, size, leaves[index], proof, tree.root())


def test_extending_by_blocks_gives_the_roots_of_appending_leaf_by_leaf() -> None:
    rng = random.Random(6962)
    leaves = [rng.randbytes(32) for _ in range(700)]
    one_by_one, roots = merkle.CompactRange(), {}
    for leaf in leaves:
        one_by_one.append(leaf)
        roots[one_by_one.size] = one_by_one.root()
    for _ in range(30):  # aligned blocks (bulk hashing) and any others (leaf by leaf), with stops inside them
        tree, done = merkle.CompactRange(), 0
        while done < len(leaves):
            count = min(rng.choice([1, 2, 3, 4, 7, 16, 64, 100, 128, 256]), len(leaves) - done)
            stops = sorted(rng.sample(range(done + 1, done + count + 1), min(count, 3)))
            assert tree.extend(leaves[done : done + count], stops) == [roots[stop] for stop in stops]
            done += count
            assert (tree.size, tree.root()) == (done, roots[done])
            resumed = merkle.CompactRange(tree.size, tree.hashes)  # its edge is still a valid compact range
            assert resumed.root() == roots[done]


def test_appending_many_completes_the_same_nodes_as_appending_one_by_one() -> None:
    rng = random.Random(2)
    leaves = [rng.randbytes(32) for _ in range(300)]
    one_by_one, many = merkle.CompactRange(), merkle.CompactRange()
    expected = [node for leaf in leaves[:77] for node in one_by_one.append(leaf)[1:]]
    assert many.append_all(leaves[:77]) == expected
    expected = [node for leaf in leaves[77:] for node in one_by_one.append(leaf)[1:]]
    assert many.append_all(leaves[77:]) == expected
    assert (many.size, many.hashes, many.root()) == (300, one_by_one.hashes, merkle.root(leaves))
    with pytest.raises(ValueError, match="32 bytes"):
        many.append_all([b"short"])


def test_blocks_hashed_apart_join_as_their_leaves_would() -> None:
    leaves = leaves_of(40)
    tree = merkle.CompactRange()
    for start, count in ((0, 16), (16, 8), (24, 8), (32, 5)):  # the last block is shorter: the log's end
        stops = [s - start for s in (start + 1, start + count // 2 + 1, start + count)]
        summary = merkle.block(leaves[start : start + count], stops)
        assert tree.join(summary) == [ROOT_AT[start + stop] for stop in stops]
        assert (tree.size, tree.root()) == (start + count, ROOT_AT[start + count])
    assert tree.join(merkle.block([])) == []
    assert tree.size == 37
    with pytest.raises(ValueError, match="not aligned"):
        tree.join(merkle.block(leaves[:4]))  # 37 is no multiple of 4
