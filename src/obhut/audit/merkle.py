"""RFC 9162 Merkle tree hashing, proofs and C2SP checkpoints. Pure: standard library only, no I/O, no keys.

The tree is the one of RFC 9162 (and RFC 6962) section 2.1: leaf hash SHA-256(0x00 || data), interior node
SHA-256(0x01 || left || right), and a tree of n leaves splits at the largest power of two below n.

Storage keeps every *perfect* node: the root of 2**level leaves starting at leaf index * 2**level. Such a node
never changes once its last leaf is appended, so it can be written once and read by `(level, index)`. Any other
subtree the proofs need is folded from at most log2(n) perfect nodes, and each proof folds at most one such
subtree, so a proof costs O(log n) lookups.

Checkpoints are formatted as c2sp.org/tlog-checkpoint bodies inside c2sp.org/signed-note envelopes. This module
only formats and parses them; the Ed25519 signature itself is made and checked by the vault.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
KEY_ID_SIZE = 4
ED25519_TYPE = b"\x01"  # signed-note signature type byte for Ed25519
MAX_SIGNATURES = 100  # the spec asks verifiers to cap signatures and to accept at least 16
EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256

NodeGetter = Callable[[int, int], bytes]
"""get(level, index): the root of the perfect subtree of leaves [index * 2**level, (index + 1) * 2**level).
Level 0 are the leaf hashes. It raises (its own error) for a node it does not hold."""


# --- hashing ------------------------------------------------------------------------------------------------
def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def leaf_hashes(items: Sequence[bytes]) -> list[bytes]:
    """leaf_hash of each, in one pass (the verifier's hot path)."""
    return [_sha256(b"\x00" + data).digest() for data in items]


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
        levels = [list(leaves)]
        while len(below := levels[-1]) > 1:
            levels.append(_paired(below))
        roots = [_fold(self._hashes + _prefix(levels, stop - start)) for stop in stops]
        if count & (count - 1):  # any other length leaves the size unaligned: a later block goes leaf by leaf
            self._hashes += _prefix(levels, count)
            self._size += count
        else:
            self._merge(levels[-1][0], count.bit_length() - 1)
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


def _prefix(levels: Sequence[Sequence[bytes]], size: int) -> list[bytes]:
    """The perfect subtrees, largest first, that make up the first `size` leaves of a block hashed into
    `levels` (levels[0] its leaves, levels[k] its aligned nodes of 2**k leaves)."""
    nodes, offset = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            nodes.append(levels[level][offset >> level])
            offset += 1 << level
    return nodes


# --- C2SP checkpoints and signed notes ----------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    """Strict standard base64: valid alphabet and padding, and canonical (re-encodes to the same text)."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"{what} is not valid base64: {text!r}") from error
    if _b64(data) != text:
        raise ValueError(f"{what} is not canonical base64: {text!r}")
    return data


def _check_text(text: str, what: str) -> None:
    if any(ord(c) < 0x20 and c != "\n" for c in text):  # noqa: PLR2004 - the spec's control character bound
        raise ValueError(f"{what} contains a control character other than newline")


def _check_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() or ord(c) < 0x20 for c in name):  # noqa: PLR2004
        raise ValueError(f"a key name must be non-empty, without spaces or '+': {name!r}")


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    """The tlog-checkpoint note text: origin, tree size and base64 root hash, one per line."""
    if not origin or "\n" in origin:
        raise ValueError(f"a checkpoint origin must be one non-empty line: {origin!r}")
    _check_text(origin, "the origin")
    if size < 0:
        raise ValueError(f"a tree size cannot be negative, got {size}")
    if len(root) != HASH_SIZE:
        raise ValueError(f"a root hash is {HASH_SIZE} bytes, got {len(root)}")
    return f"{origin}\n{size}\n{_b64(root)}\n"


def parse_checkpoint_body(body: str) -> tuple[str, int, bytes]:
    """(origin, size, root) of a checkpoint body. Extension lines are refused: this log never writes them."""
    if not body.endswith("\n"):
        raise ValueError("a checkpoint body must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) != 3:  # noqa: PLR2004 - origin, size, root
        raise ValueError(f"a checkpoint body has 3 lines (origin, size, root), got {len(lines)}")
    origin, size_text, root_text = lines
    if not origin:
        raise ValueError("the checkpoint origin is empty")
    _check_text(origin, "the origin")
    if not (size_text.isascii() and size_text.isdigit()) or (size_text != "0" and size_text.startswith("0")):
        raise ValueError(f"the checkpoint size is not a decimal number without leading zeros: {size_text!r}")
    root_hash = _unb64(root_text, "the checkpoint root")
    if len(root_hash) != HASH_SIZE:
        raise ValueError(f"the checkpoint root is {len(root_hash)} bytes, not {HASH_SIZE}")
    return origin, int(size_text), root_hash


def note_key_id(name: str, public_key: bytes) -> bytes:
    """The signed-note key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    _check_name(name)
    if len(public_key) != HASH_SIZE:
        raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(public_key)}")
    return hashlib.sha256(name.encode() + b"\n" + ED25519_TYPE + public_key).digest()[:KEY_ID_SIZE]


def verifier_key(name: str, public_key: bytes) -> str:
    """The verifier key text that lets others check notes: name+hex(key ID)+base64(0x01 || public key)."""
    return f"{name}+{note_key_id(name, public_key).hex()}+{_b64(ED25519_TYPE + public_key)}"


def signed_note(body: str, name: str, key_id: bytes, signature: bytes) -> str:
    """The note: body, a blank line, and one signature line '— name base64(key ID || signature)'."""
    if not body.endswith("\n"):
        raise ValueError("a note body must end with a newline")
    _check_text(body, "the note body")
    _check_name(name)
    if len(key_id) != KEY_ID_SIZE or not signature:
        raise ValueError(f"a signature needs a {KEY_ID_SIZE}-byte key ID and a non-empty signature")
    return f"{body}\n\u2014 {name} {_b64(key_id + signature)}\n"


def parse_signed_note(text: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """(body, [(name, key ID, signature), ...]) of a signed note; checks the syntax, not the signatures.
    The body ends at the last blank line, as the spec says, and includes its final newline."""
    _check_text(text, "a signed note")
    split = text.rfind("\n\n")
    if split < 0:
        raise ValueError("a signed note needs a blank line between the text and the signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if not block.endswith("\n"):
        raise ValueError("a signed note must end with a newline after its last signature")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise ValueError(f"a signed note may carry at most {MAX_SIGNATURES} signatures, got {len(lines)}")
    signatures: list[tuple[str, bytes, bytes]] = []
    for line in lines:
        if not line.startswith("\u2014 "):
            raise ValueError(f"a signature line starts with an em dash and a space: {line!r}")
        parts = line[2:].split(" ")
        if len(parts) != 2:  # noqa: PLR2004 - key name and base64
            raise ValueError(f"a signature line is '\u2014 <name> <base64>': {line!r}")
        name, encoded = parts
        _check_name(name)
        raw = _unb64(encoded, "a signature")
        if len(raw) <= KEY_ID_SIZE:
            raise ValueError(f"a signature holds a {KEY_ID_SIZE}-byte key ID and the signature: {line!r}")
        signatures.append((name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:]))
    return body, signatures
