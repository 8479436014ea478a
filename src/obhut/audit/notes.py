"""C2SP checkpoints (c2sp.org/tlog-checkpoint) inside signed notes (c2sp.org/signed-note): formatting and
parsing only. Pure: standard library only; the Ed25519 signature itself is made and checked by the vault."""

from __future__ import annotations

import base64
import binascii
import hashlib

from obhut.audit.merkle import HASH_SIZE

KEY_ID_SIZE = 4
ED25519_TYPE = b"\x01"  # signed-note signature type byte for Ed25519
MAX_SIGNATURES = 100  # the spec asks verifiers to cap signatures and to accept at least 16


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
