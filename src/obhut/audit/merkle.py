"""RFC 9162 Merkle tree hashing and proofs. Pure: standard library only, no I/O, no keys.

The tree is the one of RFC 9162 (and RFC 6962) section 2.1: leaf hash SHA-256(0x00 || data), interior node
SHA-256(0x01 || left || right), and a tree of n leaves splits at the largest power of two below n.

Storage keeps every *perfect* node: the root of 2**level leaves starting at leaf index * 2**level. Such a node
never changes once its last leaf is appended, so it can be written once and read by `(level, index)`. Any other
subtree the proofs need is folded from at most log2(n) perfect nodes, and each proof folds at most one such
subtree, so a proof costs O(log n) lookups.

The signed checkpoints over the tree are in `notes`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256

NodeGetter = Callable[[int, int], bytes]
"""get(level, index): the root of the perfect subtree of leaves [index * 2**level, (index + 1) * 2**level).
Level 0 are the leaf hashes. It raises (its own error) for a node it does not hold."""


# --- hashing ------------------------------------------------------------------------------------------------
def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def leaf_hashes(items: Sequence[bytes], heads: Iterable[bytes] | None = None) -> list[bytes]:
    """leaf_hash of each, in one pass (the verifier's hot path). `heads`: what goes before each item in its
    leaf's data, one per item (hashed with it, never joined to it first)."""
    if heads is None:
        return [_sha256(b"\x00" + data).digest() for data in items]
    return [_sha256(b"\x00" + head + data).digest() for head, data in zip(heads, items, strict=True)]


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly below `size` (size >= 2): where RFC 9162 splits a tree."""
    return 1 << ((size - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over leaves that are already hashed, level by level: pair neighbours, carry an odd last node up
    unchanged. This yields the same tree as the RFC's split at the largest power of two."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        level = _paired(level) + level[-1:] if len(level) % 2 else _paired(level)
    return level[0]


def _paired(level: Sequence[bytes]) -> list[bytes]:
    """The parents of neighbouring pairs of nodes (an odd last node has none), in one pass."""
    return [_sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Root of a tree given its perfect subtrees left to right, largest first: fold from the right."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def subtree_root(get: NodeGetter, start: int, end: int) -> bytes:
    """MTH of leaves [start, end) from stored perfect nodes. `start` must be a multiple of the largest power of
    two not above end - start, which holds for every subtree the RFC's decomposition produces; then the range
    is one perfect node per set bit of its size, each aligned, and at most log2(n) lookups."""
    size = end - start
    if start < 0 or size < 0:
        raise ValueError(f"bad leaf range [{start}, {end})")
    if size == 0:
        return EMPTY_ROOT
    if start % (1 << (size.bit_length() - 1)):
        raise ValueError(f"leaf range [{start}, {end}) is not a subtree of the RFC 9162 decomposition")
    parts: list[bytes] = []
    offset = start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            parts.append(get(level, offset >> level))
            offset += 1 << level
    return _fold(parts)


# --- proofs -------------------------------------------------------------------------------------------------
def inclusion_proof(index: int, size: int, get: NodeGetter) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 2.1.3.1, the sibling nearest the leaf first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    path: list[bytes] = []  # collected from the root down, returned leaf up
    start, end = 0, size
    while end - start > 1:
        middle = start + _split(end - start)
        if index < middle:
            path.append(subtree_root(get, middle, end))
            end = middle
        else:
            path.append(subtree_root(get, start, middle))
            start = middle
    path.reverse()
    return path


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2: does `proof` put `leaf` at `index` of the tree of `size` leaves with this root?"""
    if not 0 <= index < size or len(leaf) != HASH_SIZE:
        return False
    fn, sn, result = index, size - 1, leaf
    for sibling in proof:
        if sn == 0 or len(sibling) != HASH_SIZE:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and result == root


def consistency_proof(first: int, second: int, get: NodeGetter) -> list[bytes]:
    """PROOF(first, D[second]) of RFC 9162 2.1.4.1; empty when the sizes are equal."""
    if not 0 < first <= second:
        raise ValueError(f"a consistency proof needs 0 < first <= second, got {first} and {second}")
    proof: list[bytes] = []  # collected from the root down, returned bottom up
    start, size, m, whole = 0, second, first, True  # the RFC's SUBPROOF(m, D[start:start+size], whole)
    while m < size:
        k = _split(size)
        if m <= k:
            proof.append(subtree_root(get, start + k, start + size))
            size = k
        else:
            proof.append(subtree_root(get, start, start + k))
            start, size, m, whole = start + k, size - k, m - k, False
    if not whole:
        proof.append(subtree_root(get, start, start + size))
    proof.reverse()
    return proof


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2: is the tree of `first` leaves with `first_root` a prefix of the one of `second`?"""
    if not 0 < first <= second or any(len(h) != HASH_SIZE for h in proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    path = [first_root, *proof] if first & (first - 1) == 0 else list(proof)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


# --- the right edge -----------------------------------------------------------------------------------------
class CompactRange:
    """The right edge of a tree: appends in O(log n), root in O(log n), persistable.

    It holds one perfect subtree root per set bit of `size`, largest (leftmost) first; `size` and `hashes`
    are all a caller needs to store to resume appending later."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise ValueError(f"a tree size cannot be negative, got {size}")
        if len(hashes) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} edge hashes, got {len(hashes)}")
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError(f"edge hashes must be {HASH_SIZE} bytes")
        self._size = size
        self._hashes = [bytes(h) for h in hashes]

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> list[bytes]:
        return list(self._hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Adds a leaf hash; returns every perfect node this completes as (level, index, hash), leaf first."""
        return [(0, self._size, bytes(leaf)), *self.append_all([bytes(leaf)])]

    def append_all(self, leaves: Sequence[bytes]) -> list[tuple[int, int, bytes]]:
        """Adds leaf hashes; returns the interior nodes (level >= 1) they complete, as (level, index, hash)."""
        if any(len(leaf) != HASH_SIZE for leaf in leaves):
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes")
        completed, edge, size = [], self._hashes, self._size
        for leaf in leaves:
            digest, level, index = leaf, 0, size
            while index & 1:  # a left sibling of the same level is waiting on the edge: merge them
                digest = _sha256(b"\x01" + edge.pop() + digest).digest()
                level, index = level + 1, index >> 1
                completed.append((level, index, digest))
            edge.append(digest)
            size += 1
        self._size = size
        return completed

    def extend(self, leaves: Sequence[bytes], stops: Sequence[int] = ()) -> list[bytes]:
        """Appends leaf hashes; returns the root at each tree size in `stops` (ascending, each within the sizes
        the new leaves pass through). A block that starts where the tree size is a multiple of a power of two
        at least its length is a subtree of its own: it is hashed level by level, each node once, in bulk (a
        verifier appending aligned blocks). Any other block goes leaf by leaf."""
        start, count = self._size, len(leaves)
        if count == 0 or start % (1 << (count - 1).bit_length()):
            return self._one_by_one(leaves, stops)
        return self.join(block(leaves, [stop - start for stop in stops]))

    def join(self, part: Block) -> list[bytes]:
        """Appends a block hashed apart (`block`, perhaps in another process) without its leaves; returns the
        root at each of its stops. The tree's size must be a multiple of a power of two at least its length."""
        count = part.size
        if count == 0:
            return []
        if self._size % (1 << (count - 1).bit_length()):
            raise ValueError(f"a block of {count} leaves cannot join a tree of size {self._size}: not aligned")
        roots = [_fold(self._hashes + list(nodes)) for nodes in part.prefixes]
        if count & (count - 1):  # any other length leaves the size unaligned: a later block goes leaf by leaf
            self._hashes += part.nodes
            self._size += count
        else:
            self._merge(part.nodes[0], count.bit_length() - 1)
        return roots

    def _one_by_one(self, leaves: Sequence[bytes], stops: Sequence[int]) -> list[bytes]:
        roots, waiting = [], iter(stops)
        stop = next(waiting, None)
        for leaf in leaves:
            self.append(leaf)
            if self._size == stop:
                roots.append(self.root())
                stop = next(waiting, None)
        return roots

    def _merge(self, digest: bytes, level: int) -> None:
        """Appends a perfect subtree of 2**level leaves; the tree size must be a multiple of its length."""
        index = self._size >> level
        while index & 1:
            digest = _sha256(b"\x01" + self._hashes.pop() + digest).digest()
            index >>= 1
        self._hashes.append(digest)
        self._size += 1 << level

    def root(self) -> bytes:
        return _fold(self._hashes) if self._hashes else EMPTY_ROOT


@dataclass(frozen=True, slots=True)
class Block:
    """A run of leaves hashed as a subtree of its own, as much of it as a tree needs to take it in (`join`):
    its length, its perfect subtrees largest first, and the same for its first `stop` leaves at each stop."""

    size: int
    nodes: tuple[bytes, ...]
    prefixes: tuple[tuple[bytes, ...], ...]


def block(leaves: Sequence[bytes], stops: Sequence[int] = ()) -> Block:
    """Hashes `leaves` level by level, each node once; `stops`: leaf counts within it (1 to its length) at
    which the tree's root will be asked for."""
    levels = [list(leaves)]
    while len(below := levels[-1]) > 1:
        levels.append(_paired(below))
    prefixes = tuple(tuple(_prefix(levels, stop)) for stop in stops)
    return Block(len(leaves), tuple(_prefix(levels, len(leaves))), prefixes)


def _prefix(levels: Sequence[Sequence[bytes]], size: int) -> list[bytes]:
    """The perfect subtrees, largest first, that make up the first `size` leaves of a block hashed into
    `levels` (levels[0] its leaves, levels[k] its aligned nodes of 2**k leaves)."""
    nodes, offset = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            nodes.append(levels[level][offset >> level])
            offset += 1 << level
    return nodes
