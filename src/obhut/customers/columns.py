"""How a customer's values become stored columns (ciphertext and blind indexes) and back."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any

from obhut.customers import rules
from obhut.customers.repository import StoredCustomer
from obhut.customers.rules import FIELDS, Card, Kind
from obhut.vault.keyring import Keyring, SubjectCipher

# built once: json.dumps with options builds an encoder per call
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode(kind: Kind, value: Any) -> bytes:
    if kind in (Kind.ADDRESS, Kind.CARD):
        return _JSON.encode(value).encode()
    return str(value).encode()


def decode(kind: Kind, blob: bytes) -> Any:
    if kind in (Kind.ADDRESS, Kind.CARD):
        return json.loads(blob)
    return blob.decode()


def opened(cipher: SubjectCipher, customer: StoredCustomer, names: Iterable[str]) -> dict[str, Any]:
    """The decrypted values of those of `names` the stored customer has (a field without a value is left out),
    opened in one call."""
    blobs = {name: blob for name in names if (blob := getattr(customer, name)) is not None}
    plains = cipher.open_fields(list(blobs), list(blobs.values()))
    return {name: decode(FIELDS[name].kind, plain) for name, plain in zip(blobs, plains, strict=True)}


def card_token(index_digest: bytes) -> str:
    return "tok_" + base64.b32encode(index_digest).decode().rstrip("=").lower()


INDEX_COLUMNS = {spec.name: f"{spec.index}_index" for spec in FIELDS.values() if spec.index}
ALL_COLUMNS = [*FIELDS, *INDEX_COLUMNS.values(), "sensitive_ref"]


def fill(out: dict[str, Any], keyring: Keyring, cipher: SubjectCipher, values: Mapping[str, Any]) -> None:
    """`CustomerService.columns` written into `out`, so that a bulk insert fills each row in place."""
    names: list[str] = []
    plaintexts: list[bytes] = []
    for name, value in values.items():
        spec = FIELDS[name]
        index_column = INDEX_COLUMNS.get(name)
        if value is None:
            out[name] = None
            if index_column:
                out[index_column] = None
            continue
        stored = value
        if isinstance(value, Card):
            digest = keyring.blind_index("card", value.number)
            out["card_index"] = digest
            stored = {"token": card_token(digest), "brand": value.brand, "last4": value.last4}
        elif index_column and spec.index:
            out[index_column] = keyring.blind_index(spec.index, rules.index_form(spec.kind, value))
        names.append(name)
        plaintexts.append(stored.encode() if isinstance(stored, str) else encode(spec.kind, stored))
    out.update(zip(names, cipher.seal_fields(names, plaintexts), strict=True))
